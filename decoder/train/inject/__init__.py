"""Training and export of mnemo-ref-4m-inject, the injection model of issue 14
(xRAG projector, LUMEN memory compressor with live conditioning, GLIMMER
reranker, MEMORY-VQ codebooks) for the frozen reference decoder. Run as a
package with decoder/train on the path: scripts/train_inject does
`PYTHONPATH=decoder/train python3 -m inject.train` then `-m inject.export`.
"""
