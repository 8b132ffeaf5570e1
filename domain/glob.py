"""Glob patterns matched in time linear in the text
(docs/decisions/0021-linear-time-policy-matching.md).

The syntax is gobwas/glob's: ``*`` any run of characters (it crosses ``/``), ``?`` one
character, ``[abc]``, ``[a-z]`` and ``[!x]`` one character of (or not of) a set, ``{a,b}``
alternatives (nestable, each a glob), ``\\x`` the character ``x``. A glob is compiled to a
Thompson NFA, which runs as a DFA built lazily: a DFA state is the set of NFA positions alive
after the text read so far, and each transition is computed once, with one pass over the NFA,
then cached. A state seen to stay itself after a character (a star's loop) is looked at once
more, class of characters by class, so that a run of characters that keep it is skipped by one
regex search at C speed. Matching a text therefore costs one dictionary lookup per character
once the transitions it needs are known, and never more than a bounded number of passes over the
NFA per character (``Glob.work_per_character``): O(len(text) * len(pattern)), whatever both
are. A backtracking engine (Python's ``re``) takes time exponential in the number of stars.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from connaisseur.domain.errors import PolicyError

#: Deepest ``{`` nesting a glob may have; compiling recurses once per level.
MAX_BRACE_DEPTH = 32
#: Cached DFA states and transitions per glob. Past either, the cache starts afresh: memory stays
#: bounded whatever texts arrive, and the cost of a character stays one pass over the NFA.
MAX_STATES = 512
MAX_TRANSITIONS = 4096
#: A state that stays itself on most characters finds the next character that leaves it with
#: one regex search (C speed) instead of a step per character. Working out which characters
#: leave costs one step per class of characters the state's instructions tell apart, so it is
#: done only for states with at most this many classes.
MAX_CLASSES = 64


@dataclass(frozen=True, slots=True)
class CharSet:
    """What one text character may be: ranges of code points (inclusive), or everything but
    them when ``negate``."""

    ranges: tuple[tuple[str, str], ...] = ()
    negate: bool = False
    _singles: frozenset[str] = field(init=False, repr=False, compare=False)
    _spans: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        singles = frozenset(lo for lo, hi in self.ranges if lo == hi)
        object.__setattr__(self, "_singles", singles)
        object.__setattr__(self, "_spans", tuple(r for r in self.ranges if r[0] != r[1]))

    def __contains__(self, char: str) -> bool:
        inside = char in self._singles or any(lo <= char <= hi for lo, hi in self._spans)
        return inside != self.negate

    @property
    def literal(self) -> str | None:
        """The one character this set is, if it is one."""
        if len(self.ranges) == 1 and not self.negate and self.ranges[0][0] == self.ranges[0][1]:
            return self.ranges[0][0]
        return None


ANY = CharSet(negate=True)
NOTHING = CharSet()


def literal(char: str) -> CharSet:
    return CharSet(((char, char),))


def none_of(chars: str) -> CharSet:
    return CharSet(tuple((c, c) for c in chars), negate=True)


@dataclass(frozen=True, slots=True)
class Star:
    """Zero or more characters of ``chars``."""

    chars: CharSet


@dataclass(frozen=True, slots=True)
class Seq:
    """Its parts one after the other."""

    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Alt:
    """Any one of its options."""

    options: tuple[Node, ...]


Node = CharSet | Star | Seq | Alt


def optional(node: Node) -> Alt:
    return Alt((node, Seq(())))


def parse(glob: str, whole: str) -> Seq:
    """The syntax tree of ``glob``; ``whole`` is the pattern named in errors.

    Raises:
        PolicyError: a trailing escape, an unterminated ``[`` or ``{``, an empty or reversed
            character class, braces nested deeper than ``MAX_BRACE_DEPTH``.
    """
    # groups[-1] is the innermost open brace: its options so far, the last one being built.
    groups: list[list[list[Node]]] = [[[]]]
    i = 0
    while i < len(glob):
        c = glob[i]
        node: Node | None = None
        if c == "\\":
            if i + 1 >= len(glob):
                raise _invalid(whole, "trailing escape")
            node, i = literal(glob[i + 1]), i + 1
        elif c == "[":
            end = glob.find("]", i + 2)  # the first character is in the set, even ']' or '!'
            if end == -1:
                raise _invalid(whole, "unterminated '['")
            node, i = char_class(glob[i + 1 : end], whole), end
        elif c == "{":
            if len(groups) > MAX_BRACE_DEPTH:
                raise _invalid(whole, f"braces nested deeper than {MAX_BRACE_DEPTH}")
            groups.append([[]])
        elif c == "}" and len(groups) > 1:
            node = Alt(tuple(Seq(tuple(option)) for option in groups.pop()))
        elif c == "," and len(groups) > 1:
            groups[-1].append([])
        else:
            node = Star(ANY) if c == "*" else ANY if c == "?" else literal(c)
        if node is not None:
            groups[-1][-1].append(node)
        i += 1
    if len(groups) > 1:
        raise _invalid(whole, "unterminated '{'")
    return Seq(tuple(groups[0][0]))


def char_class(body: str, whole: str) -> CharSet:
    """``[body]``: ``!`` first negates; ``a-z`` is a range unless ``-`` is first or last."""
    negate = body.startswith("!")
    body = body[1:] if negate else body
    if not body:
        raise _invalid(whole, "empty character class")
    ranges: list[tuple[str, str]] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            lo, hi = body[i], body[i + 2]
            if hi < lo:
                raise _invalid(whole, f"bad character range {lo}-{hi}")
            ranges.append((lo, hi))
            i += 3
        else:
            ranges.append((body[i], body[i]))
            i += 1
    return CharSet(tuple(ranges), negate)


def _invalid(whole: str, reason: str) -> PolicyError:
    return PolicyError(f"invalid pattern {whole!r}: {reason}")


# --- the automaton --------------------------------------------------------------------------

# Instructions of the NFA program: CHAR consumes one character of its set and goes on with the
# next instruction; SPLIT goes on with each of its targets; MATCH accepts.
_CHAR, _SPLIT, _MATCH = 0, 1, 2
_NEVER = re.compile(r"(?!)")


class _Program:
    """The Thompson NFA of a syntax tree, as a list of instructions."""

    def __init__(self, tree: Node) -> None:
        self.ops: list[int] = []
        #: what each CHAR reads; NOTHING for the others, so that only CHARs ever move
        self.sets: list[CharSet] = []
        self.targets: list[tuple[int, ...]] = []
        self._emit(tree)
        self._add(_MATCH)
        #: how many classes of characters the whole pattern tells apart
        self.classes = len(_classes(self.sets))

    def _add(self, op: int, chars: CharSet = NOTHING) -> int:
        self.ops.append(op)
        self.sets.append(chars)
        self.targets.append(())
        return len(self.ops) - 1

    def _emit(self, node: Node) -> None:
        if isinstance(node, CharSet):
            self._add(_CHAR, node)
        elif isinstance(node, Star):
            loop = self._add(_SPLIT)
            self._add(_CHAR, node.chars)
            back = self._add(_SPLIT)
            self.targets[back] = (loop,)
            self.targets[loop] = (loop + 1, len(self.ops))
        elif isinstance(node, Seq):
            for part in node.parts:
                self._emit(part)
        else:
            self._emit_alt(node)

    def _emit_alt(self, node: Alt) -> None:
        fork = self._add(_SPLIT)
        starts, exits = [], []
        for option in node.options:
            starts.append(len(self.ops))
            self._emit(option)
            exits.append(self._add(_SPLIT))
        self.targets[fork] = tuple(starts)
        for jump in exits:
            self.targets[jump] = (len(self.ops),)

    def step(self, pcs: frozenset[int], char: str) -> tuple[frozenset[int], int]:
        """The CHAR and MATCH instructions alive after reading ``char`` in ``pcs``, and how
        many instructions that visited."""
        sets = self.sets
        after, visited = self.closure([pc + 1 for pc in pcs if char in sets[pc]])
        return after, len(pcs) + visited

    def closure(self, stack: list[int]) -> tuple[frozenset[int], int]:
        """The CHAR and MATCH instructions reachable from ``stack`` without reading, and how
        many instructions that visited."""
        seen: set[int] = set()
        while stack:
            pc = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            if self.ops[pc] == _SPLIT:
                stack.extend(self.targets[pc])
        return frozenset(pc for pc in seen if self.ops[pc] != _SPLIT), len(seen)


def _classes(sets: Iterable[CharSet]) -> tuple[tuple[int, int], ...]:
    """Code point intervals whose characters no set of the program tells apart."""
    bounds = {0, sys.maxunicode + 1}
    for chars in sets:
        for lo, hi in chars.ranges:
            bounds.update((ord(lo), ord(hi) + 1))
    edges = sorted(bounds)
    return tuple((lo, hi - 1) for lo, hi in itertools.pairwise(edges))


class _State:
    """A DFA state: the NFA instructions alive, whether they accept, the cached moves, and
    the characters that may lead elsewhere (``None``: any may)."""

    __slots__ = ("accepting", "exits", "looked", "moves", "pcs")

    def __init__(self, pcs: frozenset[int], accepting: bool) -> None:
        self.pcs = pcs
        self.accepting = accepting
        self.exits: re.Pattern[str] | None = None
        #: whether ``exits`` was worked out (once the state was seen to stay itself)
        self.looked = False
        self.moves: dict[str, _State] = {}


class Glob:
    """A compiled glob; :meth:`fullmatch` says whether it matches a whole text."""

    __slots__ = (
        "_after_prefix",
        "_dead",
        "_moves",
        "_prefix",
        "_program",
        "_start",
        "_states",
        "work",
    )

    def __init__(self, tree: Node) -> None:
        self._program = _Program(tree)
        #: NFA instructions visited while computing transitions: what the linear bound is
        #: about (a cached move costs one lookup on top of it).
        self.work = 0
        self._dead = _State(frozenset(), accepting=False)
        self._states: dict[frozenset[int], _State] = {}
        self._moves = 0
        start, self.work = self._program.closure([0])
        self._start = self._intern(start)
        # A literal prefix is compared at C speed and skipped by the automaton: its characters
        # are the first instructions, so the state after it starts at the next one.
        self._prefix = _literal_prefix(tree)
        after, work = self._program.closure([len(self._prefix)])
        self.work += work
        self._after_prefix = self._intern(after)

    @property
    def size(self) -> int:
        """Instructions in the NFA."""
        return len(self._program.ops)

    @property
    def cached_states(self) -> int:
        return len(self._states)

    @property
    def cached_moves(self) -> int:
        return self._moves

    @property
    def work_per_character(self) -> int:
        """The most work one character of a text can cost: a move, and the look at every
        character class that a new state gets (see ``_exits``)."""
        return 2 * self.size * (1 + min(self._program.classes, MAX_CLASSES))

    def fullmatch(self, text: str) -> bool:
        if not text.startswith(self._prefix):
            return False
        state, dead = self._after_prefix, self._dead
        pos, end = len(self._prefix), len(text)
        while pos < end:
            if state.exits is not None:
                # Every other character leads back to this state: jump to the next exit.
                found = state.exits.search(text, pos)
                if found is None:
                    return state.accepting
                pos = found.start()
            char = text[pos]
            state = state.moves.get(char) or self._move(state, char)
            if state is dead:
                return False
            pos += 1
        return state.accepting

    def _move(self, state: _State, char: str) -> _State:
        pcs, work = self._program.step(state.pcs, char)
        self.work += work
        if len(self._states) >= MAX_STATES or self._moves >= MAX_TRANSITIONS:
            self._forget()
        target = self._intern(pcs)
        state.moves[char] = target
        self._moves += 1
        if target is state and not state.looked:
            state.looked = True
            state.exits = self._exits(pcs)
        return target

    def _intern(self, pcs: frozenset[int]) -> _State:
        if not pcs:
            return self._dead
        state = self._states.get(pcs)
        if state is None:
            accepting = any(self._program.ops[pc] == _MATCH for pc in pcs)
            state = self._states[pcs] = _State(pcs, accepting)
        return state

    def _exits(self, pcs: frozenset[int]) -> re.Pattern[str] | None:
        """The characters after which a state holding ``pcs`` is another state, as a regex
        that finds the next one; ``None`` when that is worth nothing (too many character
        classes to look at, or none keeps the state)."""
        program = self._program
        classes = _classes(program.sets[pc] for pc in pcs)
        if len(classes) > MAX_CLASSES:
            return None
        leaving = []
        for lo, hi in classes:
            after, work = program.step(pcs, chr(lo))
            self.work += work
            if after != pcs:
                leaving.append(f"\\U{lo:08x}-\\U{hi:08x}")
        if len(leaving) == len(classes):
            return None
        return re.compile(f"[{''.join(leaving)}]") if leaving else _NEVER

    def _forget(self) -> None:
        """Drop every cached move; keep the two states every match starts from (any other
        state still in use stays valid, and its moves are recomputed on demand)."""
        for state in (*self._states.values(), self._start, self._after_prefix, self._dead):
            state.moves.clear()
        self._states = {s.pcs: s for s in (self._start, self._after_prefix) if s.pcs}
        self._moves = 0


def _literal_prefix(tree: Node) -> str:
    prefix = []
    parts = tree.parts if isinstance(tree, Seq) else (tree,)
    for part in parts:
        char = part.literal if isinstance(part, CharSet) else None
        if char is None:
            break
        prefix.append(char)
    return "".join(prefix)
