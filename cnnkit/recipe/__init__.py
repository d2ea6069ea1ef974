"""The training recipe: how a run is put together from its options and driven to its end.

:mod:`~cnnkit.recipe.plan` looks the options' names up and parses their values;
:mod:`~cnnkit.recipe.build` builds the run's parts into one frozen
:class:`~cnnkit.recipe.parts.RunParts` (data and augmentation set-up in
:mod:`~cnnkit.recipe.data_setup`, the feature-cache decision in :mod:`~cnnkit.recipe.features`);
:mod:`~cnnkit.recipe.fit` drives the epochs; :mod:`~cnnkit.recipe.state` saves and restores the
run state, :mod:`~cnnkit.recipe.resume` the options of a resumed run, :mod:`~cnnkit.recipe.rundir`
the run directory; :mod:`~cnnkit.recipe.run` is ``cnnkit train``'s entry (launching the workers
of a distributed run), :mod:`~cnnkit.recipe.session` the same build for plugins. The loop's
building blocks (trainer, strategies, precision, ...) are :mod:`cnnkit.engine`'s.
"""
