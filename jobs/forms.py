"""Forms built from parameter specs (the Run dialog)."""
from __future__ import annotations

from django import forms

WIDGETS = {
    "date": lambda: forms.DateInput(attrs={"type": "date"}),
    "datetime": lambda: forms.DateTimeInput(attrs={"type": "datetime-local"}),
}


def field_for(spec: dict) -> forms.Field:
    kind = spec.get("type", "str")
    common = {
        "label": spec.get("label") or spec["name"],
        "required": bool(spec.get("required")) and kind != "bool",
        "help_text": spec.get("help", ""),
        "initial": spec.get("default"),
    }
    if kind == "int":
        return forms.IntegerField(**common)
    if kind == "float":
        return forms.FloatField(**common)
    if kind == "bool":
        return forms.BooleanField(**common)
    if kind == "date":
        return forms.DateField(widget=WIDGETS["date"](), **common)
    if kind == "datetime":
        return forms.DateTimeField(widget=WIDGETS["datetime"](), **common)
    if kind == "email":
        return forms.EmailField(**common)
    if kind == "choice":
        choices = [("", "---------")] + [(str(c), str(c)) for c in spec.get("choices", [])]
        return forms.ChoiceField(choices=choices, **common)
    if kind == "json":
        return forms.JSONField(**common)
    return forms.CharField(**common)


class RunParametersForm(forms.Form):
    """One typed field per run-time parameter of a job."""

    def __init__(self, specs: list[dict], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for spec in specs:
            self.fields[spec["name"]] = field_for(spec)

    def values(self) -> dict:
        return {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}
