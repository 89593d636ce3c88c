"""The work register: every piece of work is a task — made in chat, from a forge issue, by a
schedule or by another task — with its projection kept when it was made and its actual read
from its runs' metered usage; tasks group into missions, and a task may wait for others.

:mod:`.views` is what a task and a mission add up to (pure); :mod:`.projection` reckons a
new task's projection from the finished tasks like it; :mod:`.register` makes, starts and
ends tasks (starting one through the fleet's one admission), and :mod:`.runs` binds each run
to its task and moves the task as its runs start and end.
"""
