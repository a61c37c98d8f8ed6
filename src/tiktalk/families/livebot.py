"""Family ``livebot``: Livebot trained from scratch on TikTalk (:mod:`tiktalk.baselines.livebot`);
reads the frame features."""

from tiktalk.families.family import Family

FAMILY = Family(
    name="livebot",
    code="tiktalk.baselines.livebot",
    settings="tiktalk.baselines.livebot:LivebotParams",
    schema="#/$defs/livebot_params",
    reads={"features": True},
)
