#!/usr/bin/env python3
"""Generates template expressions from a grammar of the language BudPipeline and Jinja2 share,
renders each with Jinja2, and prints one JSON line per expression:

    {"template": "{{ ... }}|", "result": "<rendered text>"}   or   {"template": ..., "error": "<kind>"}

The Swift test TemplateDifferentialTests evaluates the same templates with BudPipeline's engine
and compares. Usage: jinja_corpus.py SEED COUNT
"""
import json
import random
import sys

import jinja2

SCOPE = {
    "params": {
        "name": "Ada", "count": 3, "ratio": 0.5, "flag": True, "none": None, "zero": 0, "neg": -7,
        "tags": ["x", "y", "z"], "words": ["beta", "Alpha", "alpha", "Gamma"], "nums": [3, 1, 2, 3], "records": [{"id": "a", "value": 10}, {"id": "B", "value": 20}],
        "text": "Hello, World", "nested": {"deep": {"n": 42, "list": [1, [2, 3]]}}, "empty": "", "floats": [0.5, 2.25],
    },
}

INTS = [-20, -7, -2, -1, 0, 1, 2, 3, 5, 7, 10, 100]
FLOATS = ["0.5", "1.25", "2.0", "-2.5", "1e3", "0.1", "3.75"]
STRINGS = ["'a'", "'Hello'", "''", "'x y'", "'abc'", "'aXbXc'", "' pad '", "'3'", "'-12'", "'4.5'", "'0x1f'"]
VARIABLES = [
    "params.name", "params.count", "params.ratio", "params.flag", "params.none", "params.zero", "params.neg", "params.tags",
    "params.nums", "params.records", "params.text", "params.nested.deep.n", "params.nested.deep.list", "params.empty",
    "params.floats", "params.records[0].id", "params.tags[-1]", "params.nested['deep']", "params.records[1]['value']", "params.words",
]
BINARY = ["+", "-", "*", "/", "//", "~", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "and", "or"]
FILTERS = [
    "upper", "lower", "capitalize", "title", "trim", "length", "first", "last", "join(', ')", "join", "int", "float",
    "string", "abs", "round", "round(1)", "round(-1)", "round(1, 'floor')", "round(0, 'ceil')", "list", "reverse | list", "sort",
    "sort(reverse=true)", "sort(case_sensitive=true)", "unique | list", "unique(true) | list", "min", "max", "max(true)", "sum", "default('d')", "default('d', true)", "replace('X', '-')",
    "replace('l', 'L', 1)", "tojson", "int(7)", "float(1.5)", "count", "trim('Hd')", "join('-', attribute='id')",
    "sum(attribute='value')", "sort(attribute='value')", "int(0, 16)",
]
TESTS = ["defined", "undefined", "none", "number", "string", "integer", "float", "even", "odd", "divisibleby(3)",
         "divisibleby 2", "mapping", "sequence", "iterable", "boolean", "true", "false"]


def expression(rng, depth):
    if depth <= 0 or rng.random() < 0.25:
        return atom(rng)
    kind = rng.random()
    if kind < 0.32:
        return f"{operand(rng, depth - 1)} {rng.choice(BINARY)} {operand(rng, depth - 1)}"
    if kind < 0.35:
        # Modulo on numbers only: on strings Python's % is printf-style formatting.
        return f"({rng.choice(INTS + [float(f) for f in FLOATS])} % {rng.choice(INTS + [float(f) for f in FLOATS])})"
    if kind < 0.55:
        return f"{operand(rng, depth - 1)} | {rng.choice(FILTERS)}"
    if kind < 0.65:
        return f"({operand(rng, depth - 1)} is {rng.choice(['', 'not '])}{rng.choice(TESTS)})"
    if kind < 0.72:
        return f"(not {operand(rng, depth - 1)})"
    if kind < 0.78:
        return f"(-{operand(rng, depth - 1)})"
    if kind < 0.86:
        return f"({operand(rng, depth - 1)} if {operand(rng, depth - 1)} else {operand(rng, depth - 1)})"
    if kind < 0.93:
        return "[" + ", ".join(expression(rng, depth - 1) for _ in range(rng.randint(0, 3))) + "]"
    if kind < 0.97:
        return f"({operand(rng, depth - 1)} ** {rng.choice(['0', '1', '2', '3', '-1', '0.5'])})"
    return f"{operand(rng, depth - 1)}[{rng.choice(['0', '-1', '1', '5'])}]"


def operand(rng, depth):
    text = expression(rng, depth)
    simple = text.replace(".", "").replace("_", "").replace("[", "").replace("]", "").replace("-", "").replace("'", "")
    return text if simple.isalnum() or (text.startswith("(") and text.endswith(")")) else f"({text})"


def atom(rng):
    choice = rng.random()
    if choice < 0.25:
        return str(rng.choice(INTS)) if rng.random() < 0.7 else f"({rng.choice(INTS)})"
    if choice < 0.35:
        return rng.choice(FLOATS)
    if choice < 0.55:
        return rng.choice(STRINGS)
    if choice < 0.62:
        return rng.choice(["true", "false", "none", "True", "False", "None"])
    return rng.choice(VARIABLES)


def main():
    seed = int(sys.argv[1])
    count = int(sys.argv[2])
    rng = random.Random(seed)
    # A chainable undefined, as in BudPipeline's templates: `steps.skipped.outputs.x` is
    # undefined, not an error.
    environment = jinja2.Environment(autoescape=False, undefined=jinja2.ChainableUndefined)
    for _ in range(count):
        template = "{{ " + expression(rng, rng.randint(1, 4)) + " }}|"
        line = {"template": template}
        try:
            line["result"] = environment.from_string(template).render(SCOPE)
        except Exception as error:  # noqa: BLE001 - any failure is an error to compare
            line["error"] = type(error).__name__
        print(json.dumps(line))


if __name__ == "__main__":
    main()
