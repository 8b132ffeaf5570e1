"""Policy patterns are matched by our own automaton in time linear in the name
(docs/decisions/0021-linear-time-policy-matching.md), with exactly the semantics of the regex
translation it replaced. That translation is kept here as the oracle: hypothesis draws patterns
and names from the characters that mean something to either, and both must agree on every pair,
including which patterns are invalid. The inputs are small, so the oracle cannot backtrack for
long; the long ones go to the linear bound.
"""

from __future__ import annotations

import random
import re
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connaisseur.domain.errors import PolicyError
from connaisseur.domain.glob import MAX_BRACE_DEPTH, MAX_STATES, MAX_TRANSITIONS
from connaisseur.domain.policy import MAX_PATTERN_LENGTH, Rule, compile_pattern, split_top_level

SETTINGS = settings(max_examples=3000, derandomize=True, database=None, deadline=None)


# --- the oracle: the regex translation matching used before ------------------------------------
# (where a pattern splits into repository, tag and digest did not change: that part is shared)


def oracle(pattern: str) -> re.Pattern[str]:
    repo, at, digest = split_top_level(pattern, "@")
    last = repo.rsplit("/", 1)[-1]
    has_tag = split_top_level(last, ":").separator != ""
    body = _glob_to_regex(repo, pattern)
    if at:
        body += ("" if has_tag else r"(?::[^/@]*)?") + "@" + _glob_to_regex(digest, pattern)
    elif has_tag:
        body += r"(?:@[^/@]*)?"
    else:
        body += r"(?::[^/@]*)?(?:@[^/@]*)?"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "possible set difference"
            return re.compile(body, re.DOTALL)
    except re.error as e:
        raise PolicyError(str(e)) from e


def _glob_to_regex(glob: str, whole: str) -> str:
    out: list[str] = []
    i, braces = 0, 0
    while i < len(glob):
        c = glob[i]
        if c == "\\":
            if i + 1 >= len(glob):
                raise PolicyError("trailing escape")
            out.append(re.escape(glob[i + 1]))
            i += 2
            continue
        if c == "[":
            end = glob.find("]", i + 2)
            if end == -1:
                raise PolicyError("unterminated '['")
            out.append(_char_class(glob[i + 1 : end]))
            i = end + 1
            continue
        if c == "{":
            braces += 1
            out.append("(?:")
        elif c == "}" and braces:
            braces -= 1
            out.append(")")
        elif c == "," and braces:
            out.append("|")
        else:
            out.append({"*": ".*", "?": "."}.get(c, re.escape(c)))
        i += 1
    if braces:
        raise PolicyError("unterminated '{'")
    return "".join(out)


def _char_class(body: str) -> str:
    negate = body.startswith("!")
    body = body[1:] if negate else body
    if not body:
        raise PolicyError("empty character class")
    escaped = "".join("\\" + c if c in "\\^[]" else c for c in body)
    return f"[{'^' if negate else ''}{escaped}]"


# --- same semantics -----------------------------------------------------------------------------

patterns = st.text(alphabet=st.sampled_from("ab/:@.*?[]!-{},\\zé\udc80\U0001f600"), max_size=12)
names = st.text(alphabet=st.sampled_from("ab/:@.-z\n\udc80é\U0001f600"), max_size=14)


@SETTINGS
@given(patterns, st.lists(names, min_size=1, max_size=6))
def test_the_automaton_agrees_with_the_regex_it_replaced(pattern: str, texts: list[str]) -> None:
    try:
        expected = oracle(pattern)
    except PolicyError:
        with pytest.raises(PolicyError):
            compile_pattern(pattern)
        return
    glob = compile_pattern(pattern)
    for text in texts:
        assert glob.fullmatch(text) is (expected.fullmatch(text) is not None), (pattern, text)


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("r/[a-c-e]", "r/-", True),  # '-' after a range is a literal
        ("r/[a-]", "r/-", True),
        ("r/[a-a]", "r/a", True),  # a range of one
        ("r/[]-a]", "r/_", True),  # ']' to 'a'
        ("r/[--/]", "r/.", True),  # '-' to '/'
        ("r/[]x]", "r/]", True),  # ']' first is in the set
        ("r/[!a]", "r/\n", True),  # a negated set takes a newline too
        ("r/[\\]", "r/\\", True),  # no escapes inside a set
        ("r/{a,{b,c}d}", "r/cd", True),
        ("r/{,x}y", "r/y", True),
        ("r/a}b,c", "r/a}b,c", True),  # '}' and ',' outside braces are literals
        ("r/*", "r/a\nb:1@x", True),  # '*' and '?' cross newlines too
        ("r/a:*", "r/a:1/2", True),  # the tag's '*' crosses '/' (gobwas semantics)
        ("r/a", "r/a:1/2", False),  # the implicit tag does not
        ("r/a", "r/a@x@y", False),
    ],
)
def test_corner_cases_of_the_syntax(pattern: str, text: str, matches: bool) -> None:
    assert compile_pattern(pattern).fullmatch(text) is matches
    assert (oracle(pattern).fullmatch(text) is not None) is matches


@pytest.mark.parametrize("pattern", ["r/[b-a]", "r/[!]", "r/[]", "r/{a", "r/a\\", "r/[a"])
def test_the_same_patterns_are_invalid(pattern: str) -> None:
    with pytest.raises(PolicyError):
        oracle(pattern)
    with pytest.raises(PolicyError):
        compile_pattern(pattern)


def test_patterns_longer_than_the_limit_are_refused_at_start_up() -> None:
    Rule(pattern="r.io/" + "a" * (MAX_PATTERN_LENGTH - 5))
    with pytest.raises(PolicyError, match="longer than"):
        Rule(pattern="r.io/" + "a" * (MAX_PATTERN_LENGTH - 4))


def test_braces_nested_too_deep_are_refused_at_start_up() -> None:
    Rule(pattern="r/" + "{a," * MAX_BRACE_DEPTH + "b" + "}" * MAX_BRACE_DEPTH)
    with pytest.raises(PolicyError, match="nested deeper"):
        Rule(pattern="r/" + "{a," * (MAX_BRACE_DEPTH + 1) + "b" + "}" * (MAX_BRACE_DEPTH + 1))


# --- linear time --------------------------------------------------------------------------------


long_patterns = st.text(alphabet="ab/:@*?[]!-{},", max_size=60)
long_names = st.text(alphabet="ab/:@-", min_size=100, max_size=700)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(long_patterns, long_names)
def test_matching_work_is_linear_in_the_name(pattern: str, name: str) -> None:
    """Work is counted in NFA instructions visited; the bound is per character of the name,
    whatever the pattern (a backtracking engine has no such bound)."""
    try:
        glob = compile_pattern(pattern)
    except PolicyError:
        return
    before = glob.work
    glob.fullmatch(name)
    assert glob.work - before <= glob.work_per_character * len(name)


def test_the_automatons_cache_stays_bounded() -> None:
    """A pattern whose DFA has exponentially many states (the character 20 before the end
    is an 'a') against many random names: the cache is dropped, never grown past its bounds,
    and the answers stay right."""
    rule = Rule(pattern="r.io/*a" + "?" * 20)
    rng = random.Random(7)
    for _ in range(40):
        name = "r.io/" + "".join(rng.choice("ab") for _ in range(300))
        assert rule.matches(name) is (name[-21] == "a")
        assert rule.glob.cached_states <= MAX_STATES
        assert rule.glob.cached_moves <= MAX_TRANSITIONS
