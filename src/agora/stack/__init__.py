"""The production shape of Agora on one machine: supervised processes behind nginx."""
