"""The dotMage server: a Bottle app on Peewee, served by Waitress."""
