"""The intermediate representation: a resolved, checked spec as frozen nodes (see nodes.py).

Every node has a `kind` tag. Spans ride along for diagnostics but are excluded from
serialisation, so the plan does not change when a comment moves a line.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from .nodes import Node, field


def _span() -> Any:
    return field(default=None, exclude=True)


# ---- types ------------------------------------------------------------------------------
class StrType(Node):
    kind: Literal["str"] = "str"
    min_len: int | None = None
    max_len: int | None = None
    pattern: str | None = None  # Python `re` syntax, matched in full


class IntType(Node):
    kind: Literal["int"] = "int"
    min: int | None = None
    max: int | None = None


class FloatType(Node):
    kind: Literal["float"] = "float"
    min: float | None = None
    max: float | None = None


class BoolType(Node):
    kind: Literal["bool"] = "bool"


class DateType(Node):
    kind: Literal["date"] = "date"
    min: str | None = None  # ISO dates
    max: str | None = None


class EnumType(Node):
    kind: Literal["enum"] = "enum"
    name: str
    values: tuple[str, ...]


class LiteralType(Node):
    kind: Literal["literal"] = "literal"
    values: tuple[str, ...]


class RecordType(Node):
    kind: Literal["record"] = "record"
    name: str


class ListType(Node):
    kind: Literal["list"] = "list"
    item: Type
    min_items: int | None = None
    max_items: int | None = None


# told apart by `kind` when a plan is loaded
Type = StrType | IntType | FloatType | BoolType | DateType | EnumType | LiteralType | RecordType | ListType


def options_of(t: Type) -> tuple[Any, ...] | None:
    """The finite set of values of an enum, literal union or bool type; None otherwise."""
    match t:
        case EnumType(values=v) | LiteralType(values=v):
            return v
        case BoolType():
            return (True, False)
    return None


def type_name(t: Type) -> str:
    match t:
        case EnumType(name=n) | RecordType(name=n):
            return n
        case LiteralType(values=v):
            return " | ".join(f'"{x}"' for x in v)
        case ListType(item=i):
            return f"list[{type_name(i)}]"
    return t.kind


def type_text(t: Type) -> str:
    """A type as a spec writes it, with its bounds: `str(8..80)`, `list[str(2..20)](0..4)`."""
    def bounds(lo: Any, hi: Any) -> str:
        return "" if lo is None and hi is None else f"({'' if lo is None else lo}..{'' if hi is None else hi})"

    match t:
        case StrType(pattern=p) if p is not None:
            return f"str(/{p}/)"
        case StrType(min_len=lo, max_len=hi):
            return "str" + bounds(lo, hi)
        case IntType(min=lo, max=hi) | FloatType(min=lo, max=hi) | DateType(min=lo, max=hi):
            return t.kind + bounds(lo, hi)
        case ListType(item=item, min_items=lo, max_items=hi):
            return f"list[{type_text(item)}]" + bounds(lo, hi)
    return type_name(t)


# ---- expressions (checks and derived fields), as data ------------------------------------------
class Expr(Node):
    """op: lit | ref | call | list | not | neg | and | or | + - * / % | == != < <= > >= |
    in | not_in | contains | matches. `value` holds a literal, a function name or a regex;
    `path` a field reference."""

    kind: Literal["expr"] = "expr"
    op: str
    args: tuple[Expr, ...] = ()
    value: Any = None
    path: tuple[str, ...] | None = None
    span: Any = _span()


# a string or list written by the model with no upper bound gets these (and a warning)
DEFAULT_MAX_LEN = 256
DEFAULT_MAX_ITEMS = 8


def item_counts(t: ListType) -> tuple[int, int]:
    """The item counts a drawn list can have: its bounds, or 0 and the default maximum."""
    lo = t.min_items or 0
    return lo, max(lo, DEFAULT_MAX_ITEMS if t.max_items is None else t.max_items)


# ---- fields and schemas --------------------------------------------------------------------------
# samplers: one class per method, told apart by `method`; every one serialises the same four
# keys (unused ones null), so plans keep their form and their hashes
class _SamplerBase(Node):
    kind: Literal["sampler"] = "sampler"


class UniformSampler(_SamplerBase):
    method: Literal["uniform"] = "uniform"
    weights: None = None
    values: None = None
    provider: None = None


class WeightsSampler(_SamplerBase):
    method: Literal["weights"] = "weights"
    weights: tuple[float, ...]
    values: None = None
    provider: None = None


class PickSampler(_SamplerBase):
    method: Literal["pick"] = "pick"
    weights: None = None
    values: tuple[Any, ...]
    provider: None = None


class RegexSampler(_SamplerBase):
    method: Literal["regex"] = "regex"
    weights: None = None
    values: None = None
    provider: None = None


class FakerSampler(_SamplerBase):
    method: Literal["faker"] = "faker"
    weights: None = None
    values: None = None
    provider: str


class SamplerCase(Node):
    """One case of a conditional sampler: the condition's value it is for (`when`; the
    default case has none), and its picked values or its weights over the field's options."""

    kind: Literal["case"] = "case"
    when: Any = None
    values: tuple[Any, ...] | None = None
    weights: tuple[float, ...] | None = None


class ConditionalSampler(_SamplerBase):
    """`pick by FIELD { v: (...), else: (...) }` (PickBySampler) and `weights by FIELD { ... }`
    (WeightsBySampler): the field is drawn with the case of the value `by` (a sibling field,
    drawn or in the quota cell first) holds."""

    weights: None = None
    values: None = None
    provider: None = None
    by: str
    cases: tuple[SamplerCase, ...]
    default: SamplerCase | None = None

    def text(self) -> str:
        """As a spec writes it, the cases by their keys: `pick by intent { billing, else }`."""
        keys = [str(c.when).lower() if isinstance(c.when, bool) else str(c.when) for c in self.cases]
        how = "pick by" if isinstance(self, PickBySampler) else "weights by"
        return f"{how} {self.by} {{ {', '.join(keys + (['else'] if self.default else []))} }}"

    def case_for(self, value: Any) -> SamplerCase | None:
        for case in self.cases:
            if case.when == value and type(case.when) is type(value):
                return case
        return self.default


class PickBySampler(ConditionalSampler):
    method: Literal["pick_by"] = "pick_by"


class WeightsBySampler(ConditionalSampler):
    method: Literal["weights_by"] = "weights_by"


class DrawSampler(_SamplerBase):
    """`~ draw(topics)` (a whole row, for a field of the seed set's schema) or
    `~ draw(topics.name)` (one column), uniformly or `weighted by topics.weight`, and with
    `matching category` only among the rows whose `category` equals the sibling field's value.
    The rows stay in their file (see SeedSet.inline): the plan holds its digest, not its rows."""

    method: Literal["draw"] = "draw"
    weights: None = None
    values: None = None
    provider: None = None
    seeds: str
    column: str | None = None
    weight: str | None = None
    matching: str | None = None

    def text(self) -> str:
        """As a spec writes it."""
        drawn = self.seeds + (f".{self.column}" if self.column else "")
        return (f"draw({drawn}{f' matching {self.matching}' if self.matching else ''})"
                + (f" weighted by {self.seeds}.{self.weight}" if self.weight else ""))


# told apart by `method` when a plan is loaded
Sampler = (UniformSampler | WeightsSampler | PickSampler | RegexSampler | FakerSampler | PickBySampler
           | WeightsBySampler | DrawSampler)


def condition_of(s: Sampler | None) -> str | None:
    """The sibling field whose value a sampler draws by (`pick by F`, `draw(... matching F)`),
    which must be drawn (or be the quota cell's) first; None for the others."""
    if isinstance(s, ConditionalSampler):
        return s.by
    if isinstance(s, DrawSampler):
        return s.matching
    return None


class FieldDef(Node):
    kind: Literal["field"] = "field"
    name: str
    type: Type
    optional: bool = False
    source: Literal["model", "sampled", "derived"] = "model"
    sampler: Sampler | None = None
    derived: Expr | None = None
    mentions: tuple[str, ...] = ()
    span: Any = _span()


class Schema(Node):
    kind: Literal["schema"] = "schema"
    name: str
    fields: tuple[FieldDef, ...]
    span: Any = _span()

    def field(self, name: str) -> FieldDef | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def require(self, name: str) -> FieldDef:
        """A field the plan guarantees exists (the checker rejected specs without it)."""
        f = self.field(name)
        if f is None:
            raise KeyError(f"{self.name} has no field `{name}`")
        return f


class Enum(Node):
    kind: Literal["enum"] = "enum"
    name: str
    values: tuple[str, ...]


class Dataset(Node):
    kind: Literal["dataset"] = "dataset"
    name: str
    version: str = "0.0.0"
    seed: int = 0
    description: str = ""


# ---- engines and their constraint backends (defined once; the checker and engines read these) ---
EngineName = Literal["llamacpp", "vllm", "openai"]
ENGINES: tuple[str, ...] = get_args(EngineName)
DEFAULT_ENGINE: EngineName = "llamacpp"
# the names of the embedded model (SmolLM2-135M-Instruct, shipped in a PyPI package)
EMBEDDED_NAMES: tuple[str, ...] = ("smollm2-135m-instruct", "embedded", "smollm2")


def is_embedded(name: str) -> bool:
    return name.lower() in EMBEDDED_NAMES
# each engine's `backend` values -> the library that enforces the constraint. `auto` is the one
# that enforces every JSON Schema keyword a plan emits and keeps JSON compact: llguidance.
ENGINE_BACKENDS: dict[str, dict[str, str]] = {
    "llamacpp": {"auto": "llguidance", "llguidance": "llguidance", "guidance": "llguidance",
                 "outlines": "outlines_core", "outlines_core": "outlines_core"},
    "vllm": {"auto": "guidance", "guidance": "guidance", "llguidance": "guidance", "xgrammar": "xgrammar",
             "outlines": "outlines", "outlines_core": "outlines"},
    "openai": {"auto": "server"},  # the server decides; `schema_format` says how the schema is sent
}
BACKENDS = tuple(sorted({b for table in ENGINE_BACKENDS.values() for b in table if b != "auto"} | {"auto"}))
# how an OpenAI-compatible server is sent the schema: OpenAI's response_format json_schema (also
# vLLM's server), vLLM's own structured_outputs field, llama-cpp-python's json_object + schema
SchemaFormat = Literal["json_schema", "structured_outputs", "json_object"]
SCHEMA_FORMATS: tuple[str, ...] = get_args(SchemaFormat)


class Model(Node):
    kind: Literal["model"] = "model"
    name: str
    engine: EngineName = DEFAULT_ENGINE
    model: str = "smollm2-135m-instruct"
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int | None = None
    endpoint: str | None = None
    api_key_env: str | None = None
    backend: str = "auto"
    schema_format: SchemaFormat = "json_schema"
    concurrency: int = 8
    n_ctx: int = 2048
    threads: int | None = None
    gpu_memory_utilization: float | None = None  # vLLM; on CPU it is the share of RAM for the KV cache
    span: Any = _span()


class SeedSet(Node):
    """A seed file, checked row by row at compile time. A set only `draw` reads is not `inline`:
    its rows stay in the file (of any size), which the run reads and checks against `sha256`
    and `row_count`; the others carry their rows (examples, grown records and `mix` use them)."""

    kind: Literal["seeds"] = "seeds"
    name: str
    path: str  # relative to the spec's folder, POSIX separators
    schema_name: str
    sha256: str
    rows: tuple[dict[str, Any], ...]
    inline: bool = field(default=True, exclude_if=lambda v: v)
    row_count: int | None = field(default=None, exclude_if=lambda v: v is None)
    span: Any = _span()


# ---- generate blocks ---------------------------------------------------------------------------
QuotaUnit = Literal["percent", "count"]


class Quota(Node):
    kind: Literal["quota"] = "quota"
    field: str
    values: tuple[Any, ...]
    shares: tuple[float, ...]          # percentages (unit "percent") or record counts ("count")
    unit: QuotaUnit


class Examples(Node):
    kind: Literal["examples"] = "examples"
    n: int
    seeds: str
    matching: tuple[str, ...] = ()


# noise rules (defined once; the checker and the runtime read these): text rules rewrite a
# string's surface, the others change a date's format, the way a text writes the numbers it
# mentions (number_format), or drop an optional value
TextRule = Literal["typo", "lowercase", "uppercase", "strip_punct", "whitespace", "ocr"]
NoiseRuleName = Literal[TextRule, "date_format", "number_format", "drop"]
TEXT_RULES: tuple[str, ...] = get_args(TextRule)
NOISE_RULES: tuple[str, ...] = TEXT_RULES + ("date_format", "number_format", "drop")
# the rules that take a list of formats, one drawn per record
FORMAT_RULES: tuple[str, ...] = ("date_format", "number_format")
# the plausibility filters every record goes through; `allow NAME` switches one off for a block
# (`off_label` is the label check: see LabelRule)
PLAUSIBILITY_FILTERS: tuple[str, ...] = ("echo", "truncated", "repetition", "hollow", "junk", "copies", "off_label")


class NoiseRule(Node):
    kind: Literal["noise"] = "noise"
    field: str
    rule: NoiseRuleName
    rate: float                        # probability per record, 0..1
    formats: tuple[str, ...] = ()      # date_format: strftime codes; number_format: 1234.5 as written


class Dedup(Node):
    kind: Literal["dedup"] = "dedup"
    field: str
    mode: Literal["exact", "near"]
    threshold: float | None = None


class Judge(Node):
    kind: Literal["judge"] = "judge"
    model: str
    min_score: int
    rubric: str


class Turn(Node):
    """One side of a dialogue: its role's value, model and template (the system message)."""

    kind: Literal["turn"] = "turn"
    role: str
    model: str
    template: str


class Step(Node):
    """One request of a record written in steps: it writes `fields`, when `when` holds. A
    dialogue is a step whose one field is a list of messages written turn by turn."""

    kind: Literal["step"] = "step"
    fields: tuple[str, ...]
    model: str
    when: Expr | None = None
    template: str
    turns: tuple[Turn, ...] = ()
    rounds: tuple[int, int] | None = None
    # `candidates BEST, WORST from N ... ranked by judge`: N values, the judge's best and worst
    candidates: int = 0
    judge_model: str | None = None
    rubric: str = ""


class Grow(Node):
    """`generate T from SEEDS`: each attempt starts from one row of SEEDS (of T's schema), drawn
    among the rows of its quota cell (`match`: the quota fields the row must hold). Each field is
    copied from the row, re-sampled (`resample`: drawn again; a copied text that mentions it
    gets the new value in place of the row's) or written anew by the model (`rewrite`)."""

    kind: Literal["grow"] = "grow"
    seeds: str
    rewrite: tuple[str, ...] = ()
    resample: tuple[str, ...] = ()
    match: tuple[str, ...] = ()


class LabelRule(Node):
    """The label check of one label field: the record's `text` fields are read by a classifier
    fitted on the real rows of the schema (and, with `model`, by that model, blind, under an enum
    constraint); a record read confidently as another label is rejected (`off_label`)."""

    kind: Literal["label_rule"] = "label_rule"
    field: str
    text: tuple[str, ...]
    model: str | None = None


class Generate(Node):
    kind: Literal["generate"] = "generate"
    id: str
    schema_name: str
    count: int
    model: str
    quotas: tuple[Quota, ...] = ()
    examples: Examples | None = None
    prompt: str
    noise: tuple[NoiseRule, ...] = ()
    checks: tuple[Expr, ...] = ()
    dedup: tuple[Dedup, ...] = ()
    judge: Judge | None = None
    allow: tuple[str, ...] = ()             # plausibility filters switched off
    steps: tuple[Step, ...] = ()            # a record written in steps (then `prompt` is unused)
    grow: Grow | None = None                # records grown from real rows
    label_model: str | None = None          # `label check by MODEL`
    span: Any = _span()


class Split(Node):
    kind: Literal["split"] = "split"
    name: str
    share: float                       # percent


class Mix(Node):
    kind: Literal["mix"] = "mix"
    seeds: str
    share: float                       # percent of the train split


# chat and preference are JSON Lines in the shapes fine-tuning trainers read (TRL's SFT and DPO)
OutputFormat = Literal["jsonl", "parquet", "csv", "chat", "preference"]
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)


class Output(Node):
    kind: Literal["output"] = "output"
    path: str                          # relative to the spec's folder
    format: OutputFormat = "jsonl"
    # `format chat from MESSAGES` / `format preference from PROMPT, CHOSEN, REJECTED`; left out
    # of a plain format's serialisation, so its plan and hash stay as they were
    format_fields: tuple[str, ...] = field(default=(), exclude_if=lambda v: not v)
    splits: tuple[Split, ...] = (Split(name="train", share=100.0),)
    mix: Mix | None = None


class Evaluate(Node):
    kind: Literal["evaluate"] = "evaluate"
    label: str                         # a class label field, or a `mentions` field (span tagging)
    mode: Literal["classification", "spans"] = "classification"
    text: str = ""                     # the input field (classification)
    test: str                          # relative to the spec's folder
    compare: tuple[str, ...] = ("real", "synthetic", "blend")
