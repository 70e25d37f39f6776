from otter.test_files import test_case

OK_FORMAT = False

name = "ex-project-two-d"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(embedding, y, checks):
    checks.check_embedding_clusters(embedding, y)

