"""The scripted model's seeded stochastic mode: seeds differ, the same seed answers the same way."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import mattrace
from mattrace.integrations.litellm import instrument
from mattrace.testing import Reply, Rule, Script, register_script

CHOICES = [Reply(content=f"answer {i}") for i in range(6)]


def _answers(seed: int, tmp_path: Path, turns: int = 4) -> list[str]:
    import litellm

    instrument()
    answers = []
    with mattrace.record("choices", config={"seed": seed}, dir=tmp_path, cassette=False):
        for turn in range(turns):
            reply = litellm.completion(model="mattrace/seeded-choices", metadata={"agent": "a"},
                                       messages=[{"role": "user", "content": f"question {turn}"}])
            answers.append(reply.choices[0].message.content)
    return answers


def test_the_same_seed_answers_the_same_and_seeds_differ(tmp_path: Path) -> None:
    register_script("seeded-choices", Script(rules=[Rule(agent="a", choices=CHOICES)]))
    runs = {seed: _answers(seed, tmp_path) for seed in range(6)}
    assert runs[3] == _answers(3, tmp_path)
    assert len({tuple(r) for r in runs.values()}) > 1, "every seed answered alike"
    assert {a for r in runs.values() for a in r} <= {c.content for c in CHOICES}


def test_weights_steer_the_choice_and_must_fit(tmp_path: Path) -> None:
    register_script("seeded-choices", Script(rules=[Rule(agent="a", choices=CHOICES[:2], weights=[0, 1])]))
    assert set(_answers(1, tmp_path, turns=6)) == {"answer 1"}
    with pytest.raises(ValidationError, match="one per choice"):
        Rule(choices=CHOICES[:2], weights=[1])
