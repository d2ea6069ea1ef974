"""The training loop's building blocks: the trainer (one epoch, one evaluation), strategies and
their launcher, precision, optimizer and schedules, metrics, early stopping, progress, signals,
device, seeding, checkpoint I/O and plots. How they are put together into a run is
:mod:`cnnkit.recipe`'s job."""
