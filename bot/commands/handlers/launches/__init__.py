"""The launches that wait or come later: the spawn queue as chat sees it, its starts, queue and
cancel, and operator schedules."""
