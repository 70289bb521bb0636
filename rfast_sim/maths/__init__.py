"""The maths of a run: algorithms and problems, and the replay of a recorded event trace
(updates, the replay drivers, their layout and levels, the online driver). Knows no SimPy:
it reads the timing side's `EventTrace`, never makes one."""
