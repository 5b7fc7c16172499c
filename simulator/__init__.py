"""A local stand-in for the Robo Call Pakistan HTTP API, for demos, tests and benchmarks.

Standard library only and no Django, so it starts fast and shares nothing with the app. Run it
with `python -m simulator --help`; drive it from tests with `simulator.control.SimulatorProcess`.
"""
