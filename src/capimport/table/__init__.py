"""capimport's capability table: what each API and audit event needs.

The table is data, reviewed like data, and shared by the run-time hook
(:mod:`capimport.table.events`) and the static scanner (``apis``).
"""
