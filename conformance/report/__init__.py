"""The reports of a run, and of several runs merged: one pipeline, one way.

    records (report/results.py) + target + catalogue + history (history.py) + causes (causes.py)
        -> model.py      the report model, computed once: matrix.json's data and the frozen views of it
        -> render.py     terminal summary, matrix.md, matrix.html       render_merged.py  a merged report
           evidence.py   evidence and check pages     allure.py  Allure metadata     export.py  exports
        -> matrix.py     a run's folder      merge.py  a merged folder      finish.py  the end of a run

terms.py holds what every stage shares (orders, page paths, identities).  A module imports only from
the stages before it: no renderer imports the history or builds the model, so what every reader
sees comes from the model alone.
"""
