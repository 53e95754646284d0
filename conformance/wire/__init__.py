"""The wire: how a request reaches a target and how its answer is captured (beneath the harness).

transport.py  one httpx2 transport for both paths: capture, redaction, retries, rate limit
sse.py        the strict event-stream parser (WHATWG rules)
reply.py      a Reply: the normalised view of a regular or streamed answer
client.py     Api (one check instance) and Runtime (one process): the SDK and raw HTTP paths
shared.py     replies shared by the workers of one run (one greedy baseline per prompt)
concurrency.py how many requests a live target serves at once

Checks never import from here: they use `conformance.harness`.
"""
