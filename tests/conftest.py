import pytest


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/*/expected.* from the compiler's current output")


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")
