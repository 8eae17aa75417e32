"""The sample flow `npm start` deploys to the local `ecs` work pool (Prefect's ECS worker guide, step 4)."""

from prefect import flow, get_run_logger


@flow
def my_flow():
    logger = get_run_logger()
    logger.info("Hello from ECS!!")


if __name__ == "__main__":
    my_flow()
