"""The accuracy metric module (see accuracy.py); a package only so that it ships in the wheel."""
