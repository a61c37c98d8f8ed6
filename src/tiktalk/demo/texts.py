"""Lexicon and templates of the embedded demo dialogues (all Chinese).

Four item types, each with a key the response must carry:

* visual:    the colour and shape of THIS video's moving object (context is a generic question);
* audio:     the pitch of THIS video's tone (context is a generic question);
* knowledge: the emotion that the mini C3KG's emotion flow gives for the event the context
             mentions (events are neutral on purpose: the emotion is not guessable from the words);
* text:      plain chit-chat whose response is fixed by the context text alone.

Each question/prompt has a canonical response template (the training target and the first
reference) and the other templates of its type serve as paraphrases for the 5 references.
"""

from __future__ import annotations

# ---- video attributes -------------------------------------------------------------------
# colour word -> RGB of the moving shape
COLOURS: dict[str, tuple[int, int, int]] = {
    "红": (220, 40, 40),
    "蓝": (40, 80, 230),
    "绿": (40, 190, 70),
    "黄": (235, 215, 40),
}
SHAPES = ("圆形", "方形")
# pitch word -> tone frequency in Hz
PITCHES: dict[str, float] = {"低音": 262.0, "中音": 660.0, "高音": 1568.0}

ITEM_TYPES = ("visual", "audio", "knowledge", "text")
# Share of each item type among a split's dialogues, after the paper's Fig. 2: over 40% of
# TikTalk responses draw on the visual context, over 30% on external knowledge, under 7% on
# the audio (10% here so that the small demo test set still holds a few audio items).
ITEM_SHARES = {"visual": 0.4, "knowledge": 0.3, "text": 0.2, "audio": 0.1}

# ---- visual items -----------------------------------------------------------------------
# (question, canonical response template); {c} colour word, {s} shape word
VISUAL_QA = (
    ("视频里是什么？", "是一个{c}色的{s}。"),
    ("画面里动来动去的是啥？", "一个{c}色的{s}在动。"),
    ("你看到了什么？", "我看到了一个{c}色的{s}。"),
    ("这个视频拍的是什么东西？", "拍的是一个{c}色的{s}。"),
    ("屏幕上那个是什么？", "那是一个{c}色的{s}。"),
)
VISUAL_PARAPHRASES = (
    "{c}色的{s}，一直在移动。",
    "画面里有个{c}色的{s}。",
    "好像是个{c}色的{s}吧。",
)

# ---- audio items ------------------------------------------------------------------------
AUDIO_QA = (
    ("这个视频的声音是什么样的？", "是{p}的嘀嘀声。"),
    ("你听到了什么声音？", "我听到了{p}的嘀嘀声。"),
    ("背景里是什么声音？", "背景里是{p}的嘀嘀声。"),
    ("视频里一直响的是什么？", "一直响的是{p}的嘀嘀声。"),
)
AUDIO_PARAPHRASES = (
    "嘀嘀嘀的，是{p}。",
    "有个{p}的提示音。",
    "听着像{p}的嘀嘀声。",
)

# ---- knowledge items --------------------------------------------------------------------
# Neutral events: any of the emotions below is plausible, so only the knowledge graph tells.
EVENTS = (
    "接到了老板的电话", "看到了那封旧信", "路过了小时候的学校", "听到了那首老歌",
    "在地铁上遇见了前任", "收到了一个陌生包裹", "搬进了新的出租屋", "被安排去外地出差",
    "把头发剪短了", "第一次坐飞机", "要在婚礼上讲话", "约了医院复查",
    "翻到了爷爷的日记", "答应朋友来我家住一个月", "被调到了新的座位", "一个人去看了海",
    "参加了同学聚会", "辞掉了做了五年的工作", "面试完一直没等到通知", "碰到邻居家在装修",
    "被朋友拉去蹦极", "在车站等了三个小时", "拿到了体检报告", "报名了上台表演",
    "赶上公司调整部门", "在旧衣服里找到一张老照片", "外婆来城里看我", "爬到了山顶",
    "得知表姐突然要结婚了", "收到了大学的来信", "送孩子第一次上学", "把家里的沙发换了位置",
    "换了一个新发型去上班", "被叫到校长办公室", "等到了网购的东西", "在路上捡到一只小狗",
    "看了老同学的一条长消息", "收到了一张明信片", "听房东说下个月涨房租", "被男朋友约出来谈话",
)
EMOTIONS = ("开心", "难过", "紧张", "惊讶")
# emotion_intent flows: emotion -> what one wants to do
EMOTION_INTENTS = {
    "开心": "想和朋友分享",
    "难过": "想找人说说话",
    "紧张": "想让自己冷静下来",
    "惊讶": "想弄清楚怎么回事",
}
KNOWLEDGE_CONTEXTS = (
    "我{t}{e}。",
    "跟你说，我{t}{e}。",
    "{t}{e}，你猜我什么心情？",
    "我{t}{e}，说不出来什么感觉。",
)
TIMES = ("今天", "昨天", "刚才", "上午", "晚上")
KNOWLEDGE_CANONICAL = "那你一定很{m}吧。"
KNOWLEDGE_PARAPHRASES = (
    "听起来挺让人{m}的。",
    "换成我也会很{m}。",
    "感觉你现在很{m}。",
    "这种事确实让人{m}。",
)
# event flows (next_sentence / next_utterance) and ATOMIC-style relations: distractors that
# never carry an emotion word
NEXT_UTTERANCES = ("后来怎么样了？", "你当时怎么想的？", "然后呢？", "要不要出来聊聊？")
NEXT_SENTENCES = ("我想了很久。", "我给朋友打了个电话。", "我一晚上没睡着。", "我马上告诉了家里人。")
XREACTS = ("愣了一下", "叹了口气", "笑了出来", "沉默了一会儿")
XWANTS = ("告诉别人", "记下来", "好好休息", "出去走走")
XINTENTS = ("想换个心情", "想把事情做好", "想见见老朋友")
# concept flows (next_entity)
CONCEPT_FLOWS = (
    ("猫", "猫粮"), ("海", "沙滩"), ("电话", "短信"), ("学校", "老师"), ("飞机", "机场"),
    ("婚礼", "新娘"), ("医院", "医生"), ("日记", "回忆"), ("山顶", "风景"), ("包裹", "快递"),
    ("房租", "房东"), ("音乐", "歌手"), ("照片", "相册"), ("小狗", "散步"),
)

# ---- text chit-chat ---------------------------------------------------------------------
# prompt -> 5 responses (the first is canonical); the response depends on the prompt only
TEXT_ITEMS = (
    ("早上好呀！", ("早上好，今天也要加油哦。", "早啊，今天也加油。", "早上好，祝你今天顺利。",
                    "早，新的一天开始啦。", "早上好，记得吃早饭。")),
    ("你吃饭了吗？", ("吃过了，你呢？", "刚吃完，你吃了吗？", "吃了，你也快去吃吧。",
                      "已经吃过啦，你呢？", "吃了吃了，你吃了没？")),
    ("周末有什么安排？", ("打算在家好好休息。", "准备在家睡个懒觉。", "周末想宅在家里休息。",
                          "应该就在家歇着吧。", "没什么安排，在家休息。")),
    ("晚安，我先睡了。", ("晚安，做个好梦。", "晚安，好梦。", "早点睡，晚安。",
                          "晚安啦，明天见。", "好的，做个好梦。")),
    ("今天好累啊。", ("辛苦了，早点休息吧。", "辛苦啦，好好休息。", "累了就早点睡吧。",
                      "辛苦了，放松一下吧。", "早点休息，别太累了。")),
    ("你喜欢喝咖啡吗？", ("喜欢，每天都要喝一杯。", "挺喜欢的，每天一杯。", "喜欢，早上必须来一杯。",
                          "爱喝，每天都喝。", "喜欢啊，一天一杯。")),
    ("最近在追什么剧？", ("最近在追一部古装剧。", "在看一部古装剧。", "追了一部古装剧，挺好看。",
                          "最近迷上了一部古装剧。", "在追古装剧呢。")),
    ("外面下雨了。", ("出门记得带伞。", "记得带伞哦。", "出门别忘了带伞。",
                      "带把伞再出门吧。", "下雨了要带伞。")),
    ("我生日快到了。", ("提前祝你生日快乐！", "提前说一声生日快乐！", "生日快乐，提前祝福你！",
                        "先祝你生日快乐啦！", "提前祝生日快乐哦！")),
    ("这首歌真好听。", ("是啊，我也一直单曲循环。", "对，我也在单曲循环。", "是的，我循环好多遍了。",
                        "我也觉得，一直在循环。", "确实好听，我天天循环。")),
    ("你会做饭吗？", ("会一点，最拿手的是番茄炒蛋。", "会一些，番茄炒蛋做得最好。",
                      "会做番茄炒蛋。", "只会简单的，比如番茄炒蛋。", "会啊，番茄炒蛋最拿手。")),
    ("明天要考试了。", ("别紧张，你一定可以的。", "加油，你肯定没问题。", "别担心，一定能考好。",
                        "放轻松，你可以的。", "加油，相信你自己。")),
    ("好想去旅游。", ("等放假了一起去吧。", "放假了我们一起去。", "有空一起出去玩吧。",
                      "等假期一起去旅游吧。", "放假约起来。")),
    ("谢谢你的帮忙。", ("不客气，应该的。", "不用谢，小事一桩。", "不客气啦。",
                        "没事，应该的。", "客气什么，应该的。")),
    ("你养宠物吗？", ("养了一只猫，特别黏人。", "养了只猫，很黏人。", "有一只猫，天天黏着我。",
                      "养猫，特别黏人。", "家里有只很黏人的猫。")),
    ("今天天气真好。", ("适合出去走走。", "是啊，适合出门散步。", "很适合出去走一走。",
                        "天气这么好，出去走走吧。", "正好可以出去逛逛。")),
)

# Prefix turns that carry none of the keys above (the key turn is always the last one).
FILLERS = (
    "刚刷到这个视频。", "哈哈哈哈哈。", "这个视频挺有意思的。", "你看过这个吗？",
    "我也刷到了！", "好久没刷抖音了。", "这是谁拍的呀？", "又是你呀。",
)
