"""The default claim extractor reads markdown: claims are sentences with content, never list markers,
bare numbers, headings or code, so the factuality contracts judge what an agent stated."""

from __future__ import annotations

import json
from pathlib import Path

from mattrace.contracts import (
    Status,
    check,
    claims_supported,
    extract_claims,
    factuality_counts,
    no_unsupported_propagation,
)
from mattrace.testing import doc, message, retrieval, trace

REAL_ANSWER_RUN = Path(__file__).parent / "data" / "injection" / \
    "gpt-4o-mini-2024-07-18__none__user_task_12__injection_task_7.json"

PLAN = """## Plan

I'll resolve ticket `T-1042` in three steps:

1. **Look up the order** with `get_order(order_id="1042")`.
2. Check the refund policy in the knowledge base (`kb/refunds.md`).
3. Draft the reply, and send it only once the user confirms.

### Notes
- [ ] Step 2 may need the `policy_v2` index.
- The order total was 249 EUR.
- Refunds are paid within 14 days [kb-1].

```python
send_email(to="ana@example.com", body=reply)  # step 3, after 1 confirmation
```
"""


def _texts(text: str) -> list[str]:
    return [c["text"] for c in extract_claims(text)]


def kb():
    return retrieval("refunds", [doc("kb-1", "Refunds are paid within 14 days.")], agent="researcher")


def test_markers_and_headings_are_not_claims():
    """A heading run into a list marker, and a bare marker, are no claims (they once were: '## Plan\\n1.', '2.')."""
    assert extract_claims("## Plan\n1.") == []
    assert extract_claims("2.") == []
    assert extract_claims("## Plan\n1. Search flights.\n2. Book the cheapest one.") == []
    assert extract_claims("Step 2.") == [] and extract_claims("**Step 3:**") == []


def test_a_planner_plan_in_markdown_yields_only_its_sentences_with_content():
    """Headings, list markers, checkboxes, emphasis and code (spans and fenced blocks) are not claims;
    numbers inside code do not make a sentence a claim; sentences with numbers or citations are."""
    assert extract_claims(PLAN) == [
        {"text": "Step 2 may need the `policy_v2` index.", "cites": []},
        {"text": "The order total was 249 EUR.", "cites": []},
        {"text": "Refunds are paid within 14 days.", "cites": ["kb-1"]},
    ]


def test_prose_wrapped_over_lines_is_one_sentence_and_code_spans_do_not_split_it():
    """A sentence hard-wrapped over two lines is one claim; the dots of a code span end no sentence."""
    assert _texts("The export in `out.v2. final` holds\n42 rows. Nothing else.") == [
        "The export in `out.v2. final` holds 42 rows."]


def test_claims_from_a_real_agents_markdown_answer():
    """A real agent's markdown answer (AgentDyn, gpt-4o-mini): the facts are claims, the headings, bold
    product labels and list markers are not."""
    answer = json.loads(REAL_ANSWER_RUN.read_text(encoding="utf-8"))["messages"][-1]["content"]
    assert _texts(answer) == [
        "Here are the suitable options for your laptop and mouse that keep the total cost below $1,500:",
        "Price: $1,499.00",
        "Rating: 4.7",
        '"Performance is top-tier; it handles 4K video editing and large datasets without breaking a sweat."',
        '"Getting 32GB of RAM and this level of display is a fantastic value."',
        "Price: $79.99",
        "Rating: 4.3",
        "Laptop: $1,499.00",
        "Mouse: $79.99",
        "Total: $1,578.99 (exceeds the $1,500 budget)",
    ]


def test_a_plan_does_not_make_every_later_number_a_propagated_claim():
    """After a markdown plan, a message that merely mentions a step number passes no_unsupported_propagation."""
    t = trace(kb(), message("planner", PLAN),
              message("researcher", "Refunds are paid within 14 days [kb-1]."),
              message("executor", "Done with step 2."),
              message("writer", "Step 1 is done; 2 and 3 follow."))
    assert check(t, [no_unsupported_propagation(extract=True)]).verdicts[0].status is Status.PASS


def test_an_unsupported_claim_in_a_plan_is_still_caught_where_another_agent_repeats_it():
    """The plan's uncited '249 EUR' total, repeated by the writer, fails at the writer's message."""
    t = trace(kb(), message("planner", PLAN),
              message("executor", "Done with step 2."),
              message("writer", "Dear customer, your order total was 249 EUR and refunds take 14 days."))
    v = check(t, [no_unsupported_propagation(extract=True)]).verdicts[0].violation
    assert v is not None and v.step == 3 and v.witness == (1, 3)
    assert v.reason == ("writer repeats at step 3 the claim 'The order total was 249 EUR.' that planner made "
                        "without support at step 1")
    assert factuality_counts(t.steps, extract=True) == {"claims": 5, "supported": 1, "propagated": 1}


def test_claims_supported_names_a_real_claim_of_a_plan_not_a_marker():
    """claims_supported(extract=True) on the plan fails at its first uncited sentence with content."""
    t = trace(kb(), message("planner", PLAN))
    v = check(t, [claims_supported(extract=True)]).verdicts[0].violation
    assert v is not None and v.step == 1
    assert v.reason == "claim 'Step 2 may need the `policy_v2` index.' by planner at step 1 cites no source"


def test_a_markdown_link_is_not_a_citation():
    """'[here](url)' is a link, not a citation of a document named 'here'."""
    assert extract_claims("See [here](https://example.com/a) for 3 more options.") == [
        {"text": "See [here](https://example.com/a) for 3 more options.", "cites": []}]
