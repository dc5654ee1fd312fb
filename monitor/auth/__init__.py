"""Users, roles and sessions: who may see and change what, by role and district."""
