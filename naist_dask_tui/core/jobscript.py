"""The SGE job script dask-jobqueue would submit for these settings, without submitting it.

Built by dask-jobqueue's own ``SGEJob`` so it is the real thing, not our imitation of it: no
scheduler is started and no ``qsub`` runs. The scheduler's address is not known until the
console starts one, so it appears as a placeholder.
"""

from __future__ import annotations

from naist_dask_tui.core.settings import Settings, SettingsError

SCHEDULER_PLACEHOLDER = "tcp://<scheduler-address>:8786"


def job_script(
    settings: Settings, scheduler: str = SCHEDULER_PLACEHOLDER, worker_name: str = "SGECluster-0"
) -> str:
    from dask_jobqueue.sge import SGEJob

    kwargs = settings.sge_cluster_kwargs()
    # Cluster-level options that a single job does not take.
    kwargs.pop("scheduler_options", None)
    security = kwargs.pop("security", None)
    job_name = kwargs.pop("job_name")
    if security:
        # The real certificates exist only once the cluster runs; the script's shape is the same.
        kwargs["protocol"] = "tls://"
        scheduler = scheduler.replace("tcp://", "tls://", 1)
    try:
        # ``name`` is the dask worker's name: SGECluster names them "SGECluster-<n>".
        job = SGEJob(scheduler=scheduler, name=worker_name, job_name=job_name, **kwargs)
    except OSError as e:  # SGEJob creates the log directory
        raise SettingsError(
            "log_directory",
            f"{settings.log_dir!r} cannot be created ({e.strerror or e}); use a writable directory",
            settings.origin_of("log_directory"),
        ) from None
    return job.job_script()
