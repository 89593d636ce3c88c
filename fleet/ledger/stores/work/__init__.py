"""The ledger's stores of the work register: tasks (:mod:`.tasks`, what each task's runs
spent is :mod:`.actuals`'s) and missions (:mod:`.missions`)."""
