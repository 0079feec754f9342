"""tocsin: find compromised websites and get them cleaned up.

The core package holds what every stage shares: configuration, the clock, the
project's exceptions, URL handling, the network guard and the command line.
"""

__version__ = "0.1.0"
