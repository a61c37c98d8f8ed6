"""C3KG knowledge: the plain C3KG table (:mod:`.c3kg`) and flow retrieval (:mod:`.retrieve`)."""

from tiktalk.knowledge.c3kg import (
    ATOMIC_RELATIONS,
    convert_gpickle,
    is_flow_relation,
    read_c3kg_table,
    write_c3kg_table,
)
from tiktalk.knowledge.retrieve import (
    CharTfidfRetriever,
    FlowRetriever,
    SentenceBertRetriever,
    make_retriever,
    retrieve_split,
)

__all__ = [
    "ATOMIC_RELATIONS", "convert_gpickle", "is_flow_relation", "read_c3kg_table",
    "write_c3kg_table", "CharTfidfRetriever", "FlowRetriever", "SentenceBertRetriever",
    "make_retriever", "retrieve_split",
]
