"""flowtrace-tui: a keyboard-driven explorer for flowtrace `.ftr` sessions.

`model/` holds the data (numpy, no Textual); `widgets/` and `screens/` draw it; `app.py` wires them.
"""
