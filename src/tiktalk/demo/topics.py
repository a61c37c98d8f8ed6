"""Demo video descriptions for Table 5 (topics): each video gets a topic and a description.

A topic is drawn per video with the shares of the paper's Table 5 (a generator of its own, so
nothing else of the demo changes); the description is a template of that topic naming the
video's colour and shape. Every template of a named topic contains its Chinese category name
and no character of another category's name; the "其他" (Others) templates contain none, so
similarity to the names can recover every topic (docs/demo.md).
"""

from __future__ import annotations

import random

# Chinese category name -> (the paper's Table 5 count, description templates; {c} colour, {s} shape)
TOPICS: dict[str, tuple[int, tuple[str, ...]]] = {
    "科普": (8448, ("科普一下：{c}色{s}为什么会弹来弹去", "{c}色{s}的运动，三分钟科普")),
    "短剧": (4684, ("短剧第三集：{c}色{s}的冒险", "{c}色{s}主演的短剧")),
    "游戏": (4265, ("游戏实况：追着{c}色{s}跑", "这个游戏里只有一个{c}色{s}")),
    "生活": (3592, ("生活小片段，一个{c}色{s}", "平凡生活里的{c}色{s}")),
    "记录": (2487, ("记录一下今天看到的{c}色{s}", "用镜头记录{c}色{s}")),
    "美食": (1973, ("美食时间，{c}色{s}像一块糖", "今天的美食是{c}色{s}形状的")),
    "创意": (1660, ("创意动画：会动的{c}色{s}", "一个有创意的{c}色{s}")),
    "亲子": (1596, ("亲子时光，和宝宝一起看{c}色{s}", "适合亲子一起看的{c}色{s}")),
    "校园": (822, ("校园午后，操场上的{c}色{s}", "校园里飘过一个{c}色{s}")),
    "其他": (9176, ("{c}色{s}在屏幕上移动", "随便拍拍：一个{c}色{s}")),
}


def draw_topic(rng: random.Random) -> str:
    names = list(TOPICS)
    return rng.choices(names, weights=[TOPICS[n][0] for n in names])[0]


def description(rng: random.Random, topic: str, colour: str, shape: str) -> str:
    return rng.choice(TOPICS[topic][1]).format(c=colour, s=shape)
