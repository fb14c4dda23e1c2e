"""Job execution: workers that claim jobs from the job store."""
