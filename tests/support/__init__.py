"""Helpers shared by test files (fixtures live in tests/conftest.py): the fake WeChat/WeCom
API, console logins, chat actors and hostile-input strategies. Test files import from here,
never from one another, so a test file can be renamed or split without breaking another."""
