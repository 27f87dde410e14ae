"""The SGE job script dask-jobqueue would submit for these settings, without submitting it.

Built by dask-jobqueue's own ``SGEJob`` so it is the real thing, not our imitation of it: no
scheduler is started and no ``qsub`` runs. The scheduler's address is not known until the
console starts one, so it appears as a placeholder.
"""

from __future__ import annotations

from naist_dask_tui.core.settings import Settings, SettingsError

SCHEDULER_PLACEHOLDER = "tcp://<scheduler-address>:8786"


def job_script(
    settings: Settings, scheduler: str = SCHEDULER_PLACEHOLDER, worker_name: str = "job-0"
) -> str:
    from dask_jobqueue.sge import SGEJob
    from distributed.security import Security

    kwargs = settings.sge_cluster_kwargs()
    # Cluster-level options that a single job does not take.
    kwargs.pop("scheduler_options", None)
    security = kwargs.pop("security", None)
    tls_dir = kwargs.pop("shared_temp_directory", None)
    job_name = kwargs.pop("job_name")
    if security:
        # The real certificates are made when the cluster starts, as files in tls_dir with
        # random suffixes; the script shows where they will be.
        kwargs["protocol"] = "tls://"
        kwargs["security"] = Security(
            tls_ca_file=f"{tls_dir}/.dask-jobqueue.worker.ca_file.XXXXXXXX",
            tls_worker_cert=f"{tls_dir}/.dask-jobqueue.worker.cert.XXXXXXXX",
            tls_worker_key=f"{tls_dir}/.dask-jobqueue.worker.key.XXXXXXXX",
            require_encryption=True,
        )
        scheduler = scheduler.replace("tcp://", "tls://", 1)
    try:
        # ``name`` is the dask worker's name: the console names them "job-<n>".
        job = SGEJob(scheduler=scheduler, name=worker_name, job_name=job_name, **kwargs)
    except OSError as e:  # SGEJob creates the log directory
        raise SettingsError(
            "log_directory",
            f"{settings.log_dir!r} cannot be created ({e.strerror or e}); use a writable directory",
            settings.origin_of("log_directory"),
        ) from None
    return job.job_script()
