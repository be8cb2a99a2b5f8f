"""Counts and bytes of containers and accounts stay exact under concurrent
writers: overwrites, new objects and deletes racing on one container."""
import random
import uuid
from concurrent.futures import ThreadPoolExecutor


def test_counts_stay_exact_under_concurrent_writes(api, tokens, demo_account):
    container = f"{demo_account}/race-{uuid.uuid4().hex[:8]}"
    assert api.put(container, token=tokens["demo"]).status_code == 201
    account_before = api.head(demo_account, token=tokens["demo"]).headers
    shared_names = [f"shared-{index}" for index in range(4)]

    def writer(seed):
        rng = random.Random(seed)
        statuses = []
        for step in range(12):
            name = rng.choice(shared_names) if step % 2 else f"own-{seed}-{step}"
            if step % 5 == 4:
                statuses.append(api.delete(f"{container}/{rng.choice(shared_names)}", token=tokens["demo"]).status_code)
            else:
                body = b"x" * rng.randint(0, 3000)
                statuses.append(api.put(f"{container}/{name}", token=tokens["demo"], data=body).status_code)
        return statuses

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [status for statuses in pool.map(writer, range(8)) for status in statuses]
    assert set(results) <= {201, 204, 404}
    listing = api.get(f"{container}?format=json", token=tokens["demo"]).json()
    headers = api.head(container, token=tokens["demo"]).headers
    assert int(headers["X-Container-Object-Count"]) == len(listing)
    assert int(headers["X-Container-Bytes-Used"]) == sum(item["bytes"] for item in listing)
    account_after = api.head(demo_account, token=tokens["demo"]).headers
    assert (int(account_after["X-Account-Object-Count"]) - int(account_before["X-Account-Object-Count"])
            == len(listing))
    assert (int(account_after["X-Account-Bytes-Used"]) - int(account_before["X-Account-Bytes-Used"])
            == sum(item["bytes"] for item in listing))
