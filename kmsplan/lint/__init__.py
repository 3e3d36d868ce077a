"""`kmsplan lint`: named rules over key policies, grants, rotation and deletion settings.

- `engine`: `lint_stack` runs the registered rules over a stack and applies the manifest's
  suppressions; `fails` decides the exit code.
- `registry`: the rules, in id order (`RULES`, `RULE_IDS`, `rule_by_id`), and `RULE_FAILED`.
- `rule`: what a rule is (`Rule`, `LintContext`, `LintConfig`, `Violation`).
- `finding`: what a rule reports (`Finding`, `Severity`) and its JSON form; imports no rule,
  so the plan can hold typed findings.
- `rules/`: one module per rule; `docs`: the generator of docs/rules.md.

Nothing is imported here, so that importing `finding` does not load every rule.
"""
