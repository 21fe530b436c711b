"""The f1 metric module (see f1.py); a package only so that it ships in the wheel."""
