"""Knowledge stage: the plain C3KG table (:mod:`.c3kg`), flow retrieval (:mod:`.retrieve`) and
the retrieved-flows table with the text models read for a flow (:mod:`.flows`)."""
