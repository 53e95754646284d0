"""The OpenAI-compatibility conformance suite.

Its layers, lowest first; a module imports from its own layer and those before it, never after
(tests/test_layers.py holds it to that):

    vocabulary     the closed vocabularies: Level, Outcome, Verdict, Mode, CallPath
    config/        data: the parameter catalogue, target files, expectations
    server/        the embedded reference server, its quirks and faults; `connect` (where a target answers)
    wire/          HTTP, SSE, capture and retries; the `Api` a check talks to
    harness/       the check author's API (`from conformance.harness import check, expect, ...`)
    suites         the checks themselves (conformance.suites)
    registry       every check found without pytest: metadata lint and the manifest
    report/        records -> matrix, history, evidence pages, merged reports, Allure metadata
    migrate/       `conformance migrate`: traffic -> features -> checks -> go / no-go
    options        the run's options, declared once for the CLI and the pytest plugin
    pytest_plugin/ the pytest11 entry point (inert until asked) and the conformance session
    selftest       the mutation self-test and its kill matrix
    cli            `conformance run | serve | report | migrate | ...`
"""
