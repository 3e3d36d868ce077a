"""`kmsplan lint`: named rules over key policies, grants, rotation and deletion settings.

- `engine`: `lint_stack` runs the registered rules over a stack and applies the manifest's
  suppressions; `fails` decides the exit code; `finding_to_dict` is the JSON form of a finding.
- `registry`: the rules, in id order (`RULES`, `RULE_IDS`, `rule_by_id`).
- `rule`: what a rule is (`Rule`, `LintContext`, `LintConfig`, `Violation`) and what it
  reports (`Finding`, `Severity`).
- `rules/`: one module per rule; `docs`: the generator of docs/rules.md.

Nothing is imported here, so that a module which needs only the finding types does not load
every rule.
"""
