DEMO_PASSWORD = "Demo@2026"
DEMO_USERS = []


def load_demo():
    return False
