from otter.test_files import test_case

OK_FORMAT = False

name = "ex-eight-clusters"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(accuracy_k8, y, checks, embeddings, settings):
    checks.check_k_accuracy(accuracy_k8, embeddings['PCA'], y, k=8, seed=settings.seed)

