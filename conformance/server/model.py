"""A deterministic toy language model over a word vocabulary, with real logits.

It is not meant to say anything sensible: it is meant to make every sampling parameter act
on a real distribution, exactly as OpenAI describes it, so that the checks (whose oracles
need no intelligence) pass against it for the right reasons.

- Logits for the next token depend on the model, a digest of the prompt and the previous
  token: greedy decoding is deterministic and falls into repetition, like small models do.
- The end-of-text token grows likelier with length, so generations end on their own.
- temperature, top_p, presence/frequency penalties (OpenAI's formula), repetition_penalty
  (the multiplicative form of vLLM and transformers), logit_bias and seed act on the logits.
"""

from __future__ import annotations

import array
import collections
import dataclasses
import functools
import hashlib
import json
import math
import random
import re
import threading

WORDS = """
the a an and or but if then so because while of to in on at by for with from about into over
after before under between through during without within along across behind beyond near
time year people way day man woman child world life hand part place case week company system
program question work government number night point home water room mother area money story
fact month lot right study book eye job word business issue side kind head house service
friend father power hour game line end member law car city community name president team
minute idea kid body information back parent face others level office door health person art
war history party result change morning reason research girl guy moment air teacher force
education pasta sauce garlic basil tomato olive oil salt pepper cheese boil cook serve
good new first last long great little own other old right big high different small large
next early young important few public bad same able is was are were be been have has had do
does did say says said go goes went make makes made know knows knew think take see come want
look use find give tell work call try ask need feel become leave put mean keep let begin seem
help talk turn start show hear play run move like live believe hold bring happen write
""".split()
PUNCTUATION = [".", ",", "!", "?", ";", ":", "\n"]
DIGITS = [f" {d}" for d in range(10)]

EOS = "<|endoftext|>"
# Token id 0 is the end-of-text token; it never appears in generated text.
VOCAB: tuple[str, ...] = tuple([EOS] + [f" {w}" for w in dict.fromkeys(WORDS)] + PUNCTUATION + DIGITS)
TOKEN_ID = {t: i for i, t in enumerate(VOCAB)}
EOS_ID = 0

PIECE = re.compile(r"\s*[A-Za-z]+|\s*\d|\s*[^\sA-Za-z\d]|\s+$")


def _digest(*parts: object) -> int:
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big")


def tokenize(text: str) -> list[int]:
    """Split text into word pieces; known pieces get their vocabulary id, others a stable one."""
    ids = []
    for piece in PIECE.findall(text):
        tid = TOKEN_ID.get(piece)
        if tid is None:
            tid = 1 + _digest("unk", piece) % (len(VOCAB) - 1)
        ids.append(tid)
    return ids


@dataclasses.dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    top_p: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    logit_bias: tuple[tuple[int, float], ...] = ()
    seed: int | None = None


@dataclasses.dataclass
class Generation:
    token_ids: list[int]
    ended_naturally: bool  # the model produced its end-of-text token
    logprobs: list[list[float]] = dataclasses.field(default_factory=list)  # per step, when asked for
    text_pieces: list[str] | None = None  # the text of each token, when it is not the vocabulary's

    @property
    def pieces(self) -> list[str]:
        return self.text_pieces if self.text_pieces is not None else [VOCAB[t] for t in self.token_ids]


def log_softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    total = math.log(sum(math.exp(v - top) for v in logits)) + top
    return [min(0.0, v - total) for v in logits]


class Drift:
    """The variation greedy-drift: a seeded quarter of requests leave their path once.

    On a GPU, batching and reduction order change the last bits of the logits, so a near tie can
    resolve either way: the output takes the token ranked just below the one it would have taken
    (greedy: the second-best), once, and goes on from there as asked (greedily, or sampling with
    its seed). Half the drifting requests do so at their prompt's
    own near tie (always the same step, so drifted outputs can agree with each other), half at any
    step of the first WINDOW. Whether and where is a digest of the request and of how many times
    the same request came before, so a run is reproducible whatever runs beside it.
    """

    RATE = 0.25
    WINDOW = 32  # steps are drawn from the first WINDOW tokens: short outputs drift less often

    def __init__(self, seed: str = "greedy-drift"):
        self.seed = seed
        self._seen: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def occurrence(self, body: dict) -> str:
        """This request with its repetition count."""
        request = json.dumps(body, sort_keys=True, default=str)
        with self._lock:
            self._seen[request] += 1
            return f"{request}#{self._seen[request]}"

    def step(self, occurrence: str, prompt_ids: list[int], *choice: int) -> int | None:
        """The step at which this choice of this request drifts, or None."""
        digest = _digest(self.seed, occurrence, choice)
        if (digest % 10_000) / 10_000 >= self.RATE:
            return None
        if (digest // 10_000) % 2:
            return _digest(self.seed, tuple(prompt_ids)) % self.WINDOW  # the prompt's own near tie
        return (digest // 20_000) % self.WINDOW


NEAR_TIE = 10.0  # logits further apart than this (a logit_bias) never trade places on a GPU


def _runner_up(logits: list[float], chosen: int) -> int:
    """The token ranked just below `chosen`, if it is near enough to have won instead."""
    below = [t for t in range(len(logits)) if t != chosen and logits[t] <= logits[chosen]]
    if not below:
        return chosen
    runner_up = max(below, key=logits.__getitem__)
    return runner_up if logits[chosen] - logits[runner_up] < NEAR_TIE else chosen


class ToyModel:
    def __init__(self, name: str, context_window: int = 4096):
        self.name = name
        self.context_window = context_window
        self._seed = _digest("model", name)
        # A full run of the suite asks about 2000 distinct contexts of a model: 8192 entries (16 MiB)
        # keep every one, and bound a long-lived `conformance serve`.
        self._logits = functools.lru_cache(maxsize=8192)(self._compute_logits)

    def _compute_logits(self, prompt_key: int, previous: int) -> array.array:
        rng = random.Random(_digest(self._seed, prompt_key, previous))
        values = [rng.gauss(0.0, 2.0) for _ in VOCAB]
        values[EOS_ID] = -4.0
        return array.array("d", values)  # 2 KB a cache entry, not 8 KB of float objects

    def logits(self, prompt_key: int, previous: int, position: int) -> list[float]:
        values = list(self._logits(prompt_key, previous))
        values[EOS_ID] += 0.25 * position  # ends of its own after about 40 tokens
        return values

    def generate(self, prompt_ids: list[int], max_tokens: int, sampling: Sampling, rng: random.Random,
                 want_logprobs: bool = False, drift_at: int | None = None) -> Generation:
        """`drift_at`: the step where the token chosen gives way to the one ranked just below it, as
        a near tie resolved the other way by a GPU's arithmetic (the variation greedy-drift)."""
        prompt_key = _digest(tuple(prompt_ids))
        previous = prompt_ids[-1] if prompt_ids else EOS_ID
        counts: dict[int, int] = {}
        seen_in_prompt = set(prompt_ids)
        out: list[int] = []
        steps: list[list[float]] = []
        bias = dict(sampling.logit_bias)
        while len(out) < max_tokens:
            logits = self.logits(prompt_key, previous, len(out))
            for tid, value in bias.items():
                if 0 <= tid < len(logits):
                    logits[tid] += value
            for tid, count in counts.items():
                logits[tid] -= count * sampling.frequency_penalty + sampling.presence_penalty
            if sampling.repetition_penalty != 1.0:
                for tid in seen_in_prompt.union(counts):
                    if logits[tid] > 0:
                        logits[tid] /= sampling.repetition_penalty
                    else:
                        logits[tid] *= sampling.repetition_penalty
            token = self._choose(logits, sampling, rng)
            if len(out) == drift_at:  # the two trade logits, so the logprobs say what was decoded
                runner_up = _runner_up(logits, token)
                logits[token], logits[runner_up] = logits[runner_up], logits[token]
                token = runner_up
            if token == EOS_ID:
                return Generation(out, ended_naturally=True, logprobs=steps)
            if want_logprobs:
                steps.append(log_softmax(logits))
            out.append(token)
            counts[token] = counts.get(token, 0) + 1
            previous = token
        return Generation(out, ended_naturally=False, logprobs=steps)

    def distributions(self, prompt_ids: list[int], token_ids: list[int]) -> list[list[float]]:
        """The model's distribution at each step of an output it did not choose freely (constrained)."""
        prompt_key = _digest(tuple(prompt_ids))
        previous = [prompt_ids[-1] if prompt_ids else EOS_ID] + token_ids[:-1]
        return [log_softmax(self.logits(prompt_key, prev, position)) for position, prev in enumerate(previous)]

    def prompt_logprobs(self, prompt_ids: list[int]) -> list[list[float] | None]:
        """The distribution each prompt token was drawn from (None for the first), for echo."""
        prompt_key = _digest(tuple(prompt_ids))
        out: list[list[float] | None] = [None]
        for position in range(1, len(prompt_ids)):
            out.append(log_softmax(self.logits(prompt_key, prompt_ids[position - 1], position)))
        return out

    @staticmethod
    def _choose(logits: list[float], sampling: Sampling, rng: random.Random) -> int:
        if sampling.temperature == 0:
            return max(range(len(logits)), key=logits.__getitem__)
        scaled = [v / sampling.temperature for v in logits]
        top = max(scaled)
        weights = [math.exp(v - top) for v in scaled]
        total = sum(weights)
        order = sorted(range(len(weights)), key=weights.__getitem__, reverse=True)
        nucleus: list[int] = []
        mass = 0.0
        for tid in order:
            nucleus.append(tid)
            mass += weights[tid] / total
            if mass >= sampling.top_p:
                break
        pick = rng.random() * sum(weights[t] for t in nucleus)
        for tid in nucleus:
            pick -= weights[tid]
            if pick <= 0:
                return tid
        return nucleus[-1]
