"""Azure DevOps integration: pipeline logging commands, auth, environments and checks.

- :mod:`dbx_promote.azure.logging_commands` — ``##vso[...]`` lines and the run summary.
- :mod:`dbx_promote.azure.auth` — the ``azure-pipelines`` auth mode (Entra ID token via
  ``AzurePipelinesCredential``) as a Databricks SDK credentials strategy.
- :mod:`dbx_promote.azure.environments` — ``ado ensure-environments``.

Submodules are imported on demand so that a plain ``deploy`` does not pay for
``azure-devops``/``msrest`` imports.
"""
