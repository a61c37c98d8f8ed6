"""Media stage: resolve ids -> fetch videos -> decode -> ResNet frame + VGGish audio features.

Modules: :mod:`.ids` (id validation), :mod:`.sources` (resolvers), :mod:`.download`
(HTTP fetch + validation), :mod:`.decode` (one-pass PyAV sampler), :mod:`.visual` (ResNet),
:mod:`.vggish` (VGGish front end + network), :mod:`.config` (MediaConfig), :mod:`.shard`
(the shard jobs ``fetch_shard`` / ``extract_shard``), :mod:`.store` (the feature reader).
Nothing is re-exported here, so importing one module does not import the others.
"""
