"""The FGI expressions are built from templates parsed once per process."""

from __future__ import annotations

import libcst as cst

from fgi_rewrite.analysis.positions import walk


def test_templates_parsed_once_fill_as_libcst_fills_them() -> None:
    from libcst.helpers import parse_template_expression

    from fgi_rewrite.emit import expression_from, template

    x = cst.parse_expression("(a + b)")
    values = {"operand": x, "detached": cst.parse_expression("x.detach()"), "surrogate": cst.parse_expression("h(x)"),
              "step": cst.parse_expression("(x > 0).float()"), "injection": cst.parse_expression("(x - x.detach())")}
    for name, used in [("fgi.tmpl", ("step", "injection")), ("injection_exact.tmpl", ("operand", "detached", "surrogate")),
                       ("injection_exact_unit.tmpl", ("operand", "detached")),
                       ("injection_finite.tmpl", ("operand", "detached", "surrogate")),
                       ("injection_finite_unit.tmpl", ("operand", "detached"))]:
        arguments = {key: values[key] for key in used}
        expected = parse_template_expression(template(name), **arguments)
        first, second = expression_from(name, **arguments), expression_from(name, **arguments)
        assert first.deep_equals(expected) and second.deep_equals(expected), name
        shared = {id(n) for n in walk(first)} & ({id(n) for n in walk(second)}
                                                          | {id(n) for v in arguments.values() for n in walk(v)})
        assert not shared, name  # every node new, as libcst's
