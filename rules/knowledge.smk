# C3KG flow retrieval per dialogue (paper sec. 4.2).


rule convert_c3kg:
    """Opt-in: turn C3KG's networkx gpickle into the plain table (a pickle runs code)."""
    input:
        gpickle=config["knowledge"].get("gpickle") or [],
        code=code("c3kg"),
    output:
        table=f"{R}/knowledge/c3kg.tsv",
    params:
        allow_pickle=config["knowledge"].get("allow_pickle", False),
    log:
        f"{R}/logs/convert_c3kg.log",
    benchmark:
        f"{R}/benchmarks/convert_c3kg.tsv"
    conda:
        "../envs/knowledge.yaml"
    script:
        "../workflow/scripts/convert_c3kg.py"



rule retrieve_knowledge:
    """Top-k C3KG flows per dialogue (char TF-IDF in the demo, Sentence-BERT for real)."""
    input:
        dialogues=f"{R}/data/{{split}}.jsonl",
        c3kg=c3kg_table,
        code=code("knowledge"),
        weights=weight_inputs(config["knowledge"]["retriever"]),  # the Sentence-BERT model
    output:
        f"{R}/knowledge/{{split}}.jsonl",
        # the Sentence-BERT model's fingerprint (tiktalk.io.provenance; no weights for TF-IDF)
        provenance=f"{R}/knowledge/{{split}}.provenance.json",
    params:
        retriever=config["knowledge"]["retriever"],
    log:
        f"{R}/logs/retrieve_knowledge/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/retrieve_knowledge/{{split}}.tsv"
    conda:
        "../envs/knowledge.yaml"
    script:
        "../workflow/scripts/retrieve_knowledge.py"
