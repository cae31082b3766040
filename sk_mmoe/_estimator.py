"""``MMoERegressorClassifier``: the scikit-learn estimator, a thin subclass of skorch's NeuralNet.

This module is the public API and the order of a training call; skorch's hooks are in
``_net_hooks.py``, the encoding of the training data in ``_fit_data.py``.
"""

import inspect
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from skorch import NeuralNet
from sklearn.utils import ClassifierTags
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from ._api_checks import (
    available_unless,
    check_constructor_kwargs,
    check_set_params_names,
    check_device,
    no_classification_task,
)
from ._data import BatchSlicer, RowOutputs, TensorBatchDataset
from ._distributed_fit import DistributedFitMixin, in_distributed_session
from ._embeddings import NUMERIC_EMBEDDINGS
from ._frames import PredictOutputMixin
from ._fit_data import eval_set_dataset, training_dataset
from ._streaming import prediction_dataset
from ._html_repr import HTMLReprMixin
from ._gates import GATE_DROPOUT_MODES
from ._loss import MultiTaskLoss
from ._net_hooks import NetHooksMixin
from ._network import ARCHITECTURES, MMoENetwork
from ._shrinkage import scale_task_outputs, validation_shrinkage
from ._params import (
    BATCH_SIZE,
    LAYER_SIZES,
    check_callbacks,
    check_routed_batch_sizes,
    layer_sizes,
    prepare_continuation,
    remember_build,
    task_weight_values,
)
from ._routing import PartialFitRequestMixin
from ._schedules import ScheduleStateMixin
from ._early_stopping import scoring_terms, uses_early_stopping, warn_if_not_converged
from ._training import seeded_torch, training_seed
from .metrics import TaskScorer, task_scores
from .sources import is_source
from .tasks import TASK_KINDS, Task


class MMoERegressorClassifier(
    PartialFitRequestMixin,
    PredictOutputMixin,
    ScheduleStateMixin,
    HTMLReprMixin,
    DistributedFitMixin,
    NetHooksMixin,
    NeuralNet,
):
    """Multi-gate Mixture-of-Experts for several regression and classification targets.

    Several expert networks share the input; each task mixes the experts' outputs with
    its own softmax gate and feeds the mixture to its own tower (Ma et al., KDD 2018).
    Gate dropout (Zhao et al., RecSys 2019) drops experts from each gate at random in
    training, proposed against gates collapsing onto one expert; in our polarization studies
    it did not reliably prevent that: standardised inputs and, with them, the balancing loss
    ``gate_balance`` did. CGC and PLE (``architecture``) add experts owned by each task.
    Each column of ``y`` is a task: a quantity (squared error, or a loss for counts,
    amounts, heavy tails or quantiles), or binary or multiclass classes.

    Parameters
    ----------
    tasks : "auto", str, Task, list or dict, default="auto"
        The kind of each target column (:mod:`sk_mmoe.tasks`): ``"regression"``
        (squared error), ``"binary"``, ``"multiclass"``, ``"poisson"`` (counts, log
        link), ``"gamma"`` (positive amounts, log link), ``"huber"`` and
        ``"absolute_error"`` (heavy tails), or an object for a kind with parameters:
        ``Tweedie(power=1.5)`` (non-negative amounts with many zeros),
        ``Quantile(alpha=0.9)``, ``Huber(delta=...)``. ``"auto"`` infers the kind: bool,
        string, object and category columns are classes (binary with two); numbers
        with a fractional part are regression; whole numbers with two values are
        binary; whole numbers with three or more values are ambiguous: classes when
        they look like class codes (integers, at most 10 consecutive values, each
        common), else regression, and either way a :class:`~sk_mmoe.TaskKindWarning`
        names the column, the kind chosen and the ``tasks=`` argument for the other
        (see :func:`sk_mmoe.infer_task_kind`). A single kind applies to all columns, a
        list gives one per column, a dict ``{column: kind}`` sets some and infers the
        rest.
    n_experts : int, default=8
        Number of experts shared by all tasks; for ``"ple"``, in each level. Ignored
        when ``architecture="shared_bottom"``.
    expert_layer_sizes : int or sequence of int, default=(64,)
        Hidden layer sizes of each expert (ReLU after each).
    gate_layer_sizes : int or sequence of int, default=()
        Hidden layers of each gate before its softmax; ``()`` is the paper's linear gate.
    tower_layer_sizes : int or sequence of int, default=(32,)
        Hidden layer sizes of each task's tower before its output layer.
    gate_dropout : float in [0, 1), default=0.1
        Training-time probability of dropping each expert from each gate, per row (see
        ``gate_dropout_mode``). Applies to every gate, PLE's shared gates included. No
        effect at prediction.
    architecture : {"mmoe", "omoe", "shared_bottom", "cgc", "ple"}, default="mmoe"
        ``"mmoe"``: a gate per task over ``n_experts`` shared experts; ``"omoe"``: one
        gate shared by all tasks; ``"shared_bottom"``: one shared network of
        ``expert_layer_sizes``, no gates; ``"cgc"`` (Customized Gate Control, Tang et
        al., RecSys 2020): each task also owns ``n_task_experts`` experts, and its gate
        mixes its own and the shared ones; ``"ple"`` (Progressive Layered Extraction,
        same paper): ``n_levels`` CGC levels stacked, where each intermediate level also
        has a shared gate over all its experts that feeds the next level's shared
        experts.
    n_task_experts : int, default=1
        Experts owned by each task (in each level), for ``"cgc"`` and ``"ple"``;
        ignored by the other architectures.
    n_levels : int, default=2
        Extraction levels of ``"ple"``; ignored otherwise (``"cgc"`` is one level, and
        ``"ple"`` with one level is ``"cgc"``).
    gate_dropout_mode : {"renormalize", "scale"}, default="renormalize"
        ``"renormalize"``: a dropped expert's logit is masked before the softmax, so the
        kept weights sum to 1 (and the dropped logit gets no gradient from that row);
        ``"scale"``: inverted dropout on the softmax output, the kept weights divided by
        ``1 - gate_dropout`` and not renormalised.
    gate_temperature : float > 0, default=1.0
        Every gate computes ``softmax(logits / gate_temperature)``, in training and
        prediction; above 1 flattens the weights.
    gate_balance : float >= 0, default=0.0
        Coefficient of the importance loss of Shazeer et al. (ICLR 2017), the squared
        coefficient of variation of each expert's summed gate weight in the batch,
        averaged over all gates, added to the training loss. Recorded per epoch in
        ``history_`` as ``gate_balance_loss`` (already multiplied by the coefficient)
        when positive.
    task_weights : list, dict, "uncertainty" or None, default=None
        Weights of the per-task losses in the training loss; None weighs tasks equally.
        A dict ``{task: weight}`` leaves unnamed tasks at 1. ``"uncertainty"`` learns
        them (Kendall et al., CVPR 2018): a log-variance ``s_t`` per task, trained with
        the network, and the loss ``sum_t c_t exp(-s_t) loss_t + s_t / 2`` with
        ``c_t = 1/2`` for squared-error regression and 1 for the other kinds.
    class_weight : "balanced", dict or None, default=None
        Weights of the classes in the loss of classification tasks, multiplying
        ``sample_weight``, as in scikit-learn's classifiers. ``"balanced"`` weighs the
        classes of every classification task by ``n_labelled / (n_classes * count)`` on
        the rows of the training call; ``{task: "balanced" or {class: weight}}`` sets
        it per task (classes left out weigh 1); with a single classification task,
        ``{class: weight}`` applies to it. Validation rows (and ``eval_set``) are
        weighted the same way.
    numeric_embedding : {"auto", None, "periodic", "piecewise_linear"}, default="auto"
        How each numeric feature enters the network. None: its standardised value.
        ``"periodic"``: the PLR embedding, ``"piecewise_linear"``: the PLE embedding over
        48 quantile bins of the training rows, both of Gorishniy et al. (NeurIPS 2022),
        16 numbers per feature (so the experts' input grows 16-fold for numeric columns).
        ``"auto"``: ``"piecewise_linear"`` for dense ``X`` with at most 100 numeric
        columns and at least 1,000 training rows, None for wider or sparse ``X``, where
        16 numbers per column would cost more than it gains, and for fewer rows. The
        choice was made on validation rows: on a panel of real tables (census-income,
        penguins, Wage, diamonds) the piecewise-linear embedding beat no embedding on 8
        of 11 tasks, gaining most from 2,000 rows on; on tiny smooth problems (100-150
        training rows: a linear 3-class problem, iris, wine, breast cancer) and on
        penguins (172 rows) the plain standardised value did as well or better, by up
        to 0.02 accuracy.
    max_epochs : int, default=200
        Most passes over the training data; early stopping usually ends training sooner.
    batch_size : int, "auto" or -1, default="auto"
        Rows per training mini-batch. ``"auto"``: the training rows / 16 rounded down to
        a power of two, within [16, 256], so small tables still get enough optimizer
        steps per epoch, and on large tables the rows / 32 rounded down to a power of
        two up to 1,024 (512 from 16,384 rows, 1,024 from 32,768), with ``lr`` raised by
        ``sqrt(batch / 256)``: fewer, larger steps in the same number of epochs (on
        census-income at 50,000 rows, validation AUC within 0.0006 of 256-row batches
        in 0.37-0.43x the time); -1: all rows. Prediction uses 1,024 rows per batch
        with ``"auto"``.
    steps_per_epoch : int or None, default=None
        Optimizer steps per epoch. None: an epoch is one pass over the training rows.
        An int makes an epoch that many steps, the next epoch continuing where the last
        one stopped (and a new shuffled pass starting when the rows run out), so that
        the validation loss, early stopping and ``max_epochs`` count in steps on data
        too long for a pass per epoch.
    lr : float, default=1e-3
        Learning rate (of batches up to 256 rows, with ``batch_size="auto"``).
    optimizer : torch optimizer class, default=torch.optim.Adam
        Further optimizer arguments are routed with ``optimizer__<name>``, e.g.
        ``optimizer__weight_decay=1e-4``. Adam and AdamW run their fused kernel
        (``fused=True``, the same update in one op per weight tensor instead of about
        ten) on CPU and CUDA unless ``optimizer__foreach`` or ``optimizer__fused`` is
        given. A categorical table of 50,000 rows or more is stepped apart, by
        ``torch.optim.SparseAdam`` (see Notes). A ``fit`` on fewer than 1,000 rows (the
        hold-out included; not ``partial_fit``) trains the default Adam with decoupled
        weight decay 2.0 (``weight_decay=2.0, decoupled_weight_decay=True``: AdamW's
        update) unless ``optimizer__weight_decay`` is given or
        ``task_weights="uncertainty"`` (decay would pull the learned weights toward
        equal): each step shrinks the weights by a share ``lr * 2.0``, so weights the
        few rows do not hold up fade. Chosen on validation rows (10 draws each): on a
        linear 3-class problem, iris, wine and breast cancer with 100-150 training rows
        it raised accuracy by 0.003-0.008 on each, to within 0.007 of the better of
        LogisticRegression and MLPClassifier on all four (without it, 0.012 and 0.013
        behind on iris and the linear problem); a decay of 5 cost iris 0.012, 1 changed
        little, and refitting on all rows for the epochs early stopping chose did not
        help. Penguins (172 rows) stayed ahead of per-task gradient boosting on all
        three tasks with it.
    early_stopping : "auto" or bool, default="auto"
        Hold out ``validation_fraction`` of the training rows (stratified on the first
        classification task), stop when the validation loss has not improved for
        ``n_iter_no_change`` epochs (or ``scoring``, when given) and restore the weights
        of the best epoch. ``"auto"``:
        on from 100 training rows, or whenever ``fit`` gets an ``eval_set`` (whose rows
        are then used instead of a hold-out). When off, every row trains and all
        ``max_epochs`` run. ``partial_fit`` never holds rows out unless this is True.
    scoring : "loss", task scorer or dict, default="loss"
        What early stopping watches on the validation rows. ``"loss"``: the training
        loss on them (``valid_loss``). A task scorer, ``make_task_scorer("churned",
        "roc_auc")``: that task's metric. A dict ``{task: metric}`` or ``{task: (metric,
        weight)}``: the weighted mean of those metrics, losses negated so that greater
        is better. Recorded every epoch as ``valid_score``. Whatever ``scoring``, each
        task's default metric (R² or accuracy) on the validation rows is recorded in
        ``history_`` as ``valid_<task>_<metric>`` and printed with ``verbose``.
    validation_fraction : float in (0, 1), default=0.1
        Share of rows held out when early stopping is on without an ``eval_set``.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    shrink_quantities : bool, default=True
        After training with validation rows (early stopping's hold-out or ``eval_set``),
        move each quantity task's predictions toward its training mean (the median for
        ``huber``, ``absolute_error`` and quantile tasks) by the factor in [0, 1] that
        minimises the task's loss on the validation rows: the task's output layer is
        multiplied by it, and ``output_shrinkage_`` shows it. Early stopping watches all
        tasks together, so a task with little signal may be fitting noise by the epoch
        it keeps; this brings such a task back to (about) its mean instead of predicting
        worse than it. A task that beats its mean on the validation rows keeps a factor
        near 1. Class tasks are never changed. Without validation rows nothing changes.
    random_state : int, RandomState instance or None, default=None
        Controls weight initialisation, shuffling, gate dropout and the validation split.
        An int gives identical results on every fit. torch's global random state is left
        as it was.
    device : str or torch.device, default="cpu"
        Where the network computes, e.g. ``"cuda"``.
    verbose : int, default=0
        Print a line per epoch when positive.
    callbacks : list of skorch callbacks, "disable" or None, default=None
        Extra skorch callbacks; configure them with ``callbacks__<name>__<param>``.
    warm_start : bool, default=False
        When True and the model is fitted, ``fit`` continues training the fitted
        network for ``max_epochs`` more epochs, as ``partial_fit`` does (skorch's
        meaning): ``y`` must have the fitted tasks and only labels seen at the first
        fit. When False, every ``fit`` starts from a new network.
    distributed : bool, default=False
        Data-parallel training on ``torch.distributed`` (DistributedDataParallel) in
        every process a launcher started (``torchrun``, Ray Train, Spark's
        TorchDistributor, SLURM). ``fit`` and ``partial_fit`` join the process group
        already formed, or form it from the launcher's environment (``RANK``,
        ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``): gloo on CPU, NCCL on CUDA
        (``device="cuda"`` then means the GPU of ``LOCAL_RANK``); without either they
        raise :class:`~sk_mmoe.DistributedTrainingError`. Every rank passes the same
        full ``X`` and ``y`` (checked) and trains on its share of every global batch of
        ``batch_size`` rows (of the validation rows alike), so the model does not depend
        on the number of ranks. Every rank may instead pass the same data source: it
        fits the encoders on the whole source, then trains each epoch on its own equal
        slice of the source's rows in that epoch's order, in batches of ``batch_size /
        world`` rows. After ``fit`` every rank holds the same ordinary fitted
        model.
        Only rank 0 prints and warns.
    distributed_timeout : float > 0, default=600.0
        Seconds a rank waits for the others when forming the process group and, for a
        group that ``fit`` formed, in every collective: a rank that died or stopped
        answering ends the fit on the others with ``DistributedTrainingError`` instead of
        a hang. A group formed by your own ``init_process_group`` keeps its timeout.
    **kwargs
        skorch's routed parameters: ``optimizer__*``, ``callbacks__*``,
        ``iterator_train__*``, ``iterator_valid__*``.

    Attributes
    ----------
    task_names_ : list
        The task names: ``y``'s column names, or 0..n_tasks-1 for arrays.
    tasks_ : list of Task
        Each task's fitted task object (:mod:`sk_mmoe.tasks`), e.g. ``Poisson()``:
        its kind, parameters and the encoding learned at fit.
    task_types_ : list of str
        Each task's kind, e.g. ``"poisson"``.
    classes_ : list
        One array of class labels per task; None for tasks without classes.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` was a DataFrame with string column names.
    n_iter_ : int
        Number of epochs trained so far, ``len(history_)``; an epoch cut short by an
        error in ``partial_fit`` counts.
    task_weights_ : ndarray of shape (n_tasks,)
        The weight of each task's loss in the training loss at the end of the last fit;
        learned when ``task_weights="uncertainty"``.
    output_shrinkage_ : ndarray of shape (n_tasks,)
        The factor each task's output layer was multiplied by at the end of the last
        training call (see ``shrink_quantities``): 1 for class tasks, for calls without
        validation rows and with ``shrink_quantities=False``; 0 means the task predicts
        its training mean.
    expert_labels_ : list
        Who owns each column of :meth:`gate_weights`: ``"shared"`` or the owning task's
        name (``"cgc"`` and ``"ple"``).
    history_ : skorch.History
        Per-epoch and per-batch training records: ``train_loss``, ``valid_loss`` (with
        early stopping), and the gate diagnostics ``gate_utilization``,
        ``gate_entropy``, ``gate_polarized_rows`` and ``dead_experts`` (see
        :class:`sk_mmoe.diagnostics.GateUtilization`, which also warns at the end of
        ``fit`` when a gate has polarized).
    module_ : MMoENetwork
        The trained PyTorch module.
    optimizer_ : torch.optim.Optimizer
        The ``optimizer`` built on the network's parameters.
    sparse_optimizer_ : torch.optim.SparseAdam
        Only when the categorical table trains with sparse gradients (see Notes): the
        optimizer of that table.

    See Also
    --------
    sk_mmoe.task_scores : scores per task.
    sk_mmoe.make_task_scorer : a per-task scorer for ``GridSearchCV``.

    Notes
    -----
    ``X`` may be an array, a sparse matrix or a pandas DataFrame. A DataFrame's
    category, object, string and bool columns are features as they are: bool columns
    count as 0/1, the others are categorical and get a trained embedding of
    ``min(16, round(1.6 * n_levels ** 0.56))`` numbers per column (a level unseen at fit
    maps to a reserved all-zero row, a missing value to its own row). When the
    categorical columns have 50,000 table rows or more together (ID columns), their
    table trains with sparse gradients: ``optimizer`` steps every other parameter and
    ``torch.optim.SparseAdam``, at the same learning rate (``lr`` changes and schedules
    included), the rows each batch touched, so that a step costs about the same with
    10**6 levels as with 100. Numeric columns are
    standardised inside the network with the training rows' mean and standard deviation
    (0/1 columns such as one-hot indicators enter unchanged); NaN is imputed by the mean
    and, for columns that had NaN at fit, flagged by a 0/1 indicator. A sparse matrix
    stays sparse: the first layer of the experts and gates reads its stored entries only
    (the mean enters as one shift per batch; a batch small enough, at most 2**22 entries
    in dense form, is densified on its own), so its cost follows the non-zeros;
    the fitted model is the one a dense copy of ``X`` would give, and either format can
    be passed to ``predict``. Quantity targets are scaled for training and mapped back at
    prediction: squared-error regression by its mean and standard deviation, the
    robust kinds (huber, absolute error, quantile) by the median and interquartile
    range, the log-link kinds (poisson, gamma, tweedie) by the mean, so that an
    untrained network predicts the training mean. A missing label (NaN or None) leaves that row out of that task's
    loss and score. ``ConvergenceWarning`` says when training stopped at ``max_epochs``
    while the loss was still improving.

    ``set_params`` on a fitted model: ``fit`` (without ``warm_start``) builds a new
    network with every parameter. ``partial_fit`` and ``fit`` with ``warm_start=True``
    continue the built network, and apply every training-time setting: ``lr``,
    ``max_epochs``, ``batch_size``, ``steps_per_epoch``, ``optimizer__*``, ``early_stopping``,
    ``validation_fraction``, ``random_state``, ``verbose``, ``callbacks__*``; ``optimizer``
    and ``n_iter_no_change`` by rebuilding the optimizer or the callbacks; and
    ``gate_dropout``, ``gate_dropout_mode``, ``gate_temperature``, ``gate_balance`` and
    ``task_weights`` given as numbers, set on the built network and loss. A change that
    would alter the network's shape or input encoding (``n_experts``, the layer sizes,
    ``architecture``, ``n_task_experts``, ``n_levels``, ``numeric_embedding``), the kind
    of a task (``tasks``), the loss's trained parameters (``task_weights`` to or from
    ``"uncertainty"``) or the device (``device``) raises a ValueError naming the parameter
    and telling to call ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sk_mmoe import MMoERegressorClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 5))
    >>> y = pd.DataFrame({
    ...     "value": X[:, 0] + 0.1 * rng.normal(size=300),
    ...     "flag": X[:, 1] > 0,
    ...     "colour": np.array(["red", "green", "blue"])[rng.randint(3, size=300)],
    ... })
    >>> model = MMoERegressorClassifier(n_experts=4, max_epochs=10, random_state=0)
    >>> model.fit(X, y).predict(X[:2]).columns.tolist()
    ['value', 'flag', 'colour']
    >>> model.task_types_
    ['regression', 'binary', 'multiclass']
    >>> [None if p is None else p.shape for p in model.predict_proba(X[:2])]
    [None, (2, 2), (2, 3)]
    """

    _parameter_constraints = {
        "tasks": [StrOptions({"auto", *TASK_KINDS}), Task, list, tuple, dict],
        "n_experts": [Interval(Integral, 1, None, closed="left")],
        "expert_layer_sizes": LAYER_SIZES,
        "gate_layer_sizes": LAYER_SIZES,
        "tower_layer_sizes": LAYER_SIZES,
        "gate_dropout": [Interval(Real, 0, 1, closed="left")],
        "architecture": [StrOptions(set(ARCHITECTURES))],
        "n_task_experts": [Interval(Integral, 1, None, closed="left")],
        "n_levels": [Interval(Integral, 1, None, closed="left")],
        "gate_dropout_mode": [StrOptions(set(GATE_DROPOUT_MODES))],
        "gate_temperature": [Interval(Real, 0, None, closed="neither")],
        "gate_balance": [Interval(Real, 0, None, closed="left")],
        "task_weights": [None, list, tuple, np.ndarray, dict, StrOptions({"uncertainty"})],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "numeric_embedding": [None, StrOptions({"auto", *NUMERIC_EMBEDDINGS})],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": BATCH_SIZE,
        "steps_per_epoch": [None, Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [callable],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "scoring": [StrOptions({"loss"}), TaskScorer, dict],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "shrink_quantities": ["boolean"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "verbose": ["verbose"],
        "callbacks": [None, list, StrOptions({"disable"})],
        "warm_start": ["boolean"],
        "distributed": ["boolean"],
        "distributed_timeout": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        tasks="auto",
        n_experts=8,
        expert_layer_sizes=(64,),
        gate_layer_sizes=(),
        tower_layer_sizes=(32,),
        gate_dropout=0.1,
        architecture="mmoe",
        n_task_experts=1,
        n_levels=2,
        gate_dropout_mode="renormalize",
        gate_temperature=1.0,
        gate_balance=0.0,
        task_weights=None,
        class_weight=None,
        numeric_embedding="auto",
        max_epochs=200,
        batch_size="auto",
        steps_per_epoch=None,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        early_stopping="auto",
        scoring="loss",
        validation_fraction=0.1,
        n_iter_no_change=10,
        shrink_quantities=True,
        random_state=None,
        device="cpu",
        verbose=0,
        callbacks=None,
        warm_start=False,
        distributed=False,
        distributed_timeout=600.0,
        **kwargs,
    ):
        check_constructor_kwargs(type(self).__name__, self._own_param_names(), kwargs)
        super().__init__(
            module=MMoENetwork,
            criterion=MultiTaskLoss,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            iterator_train=BatchSlicer,
            iterator_valid=BatchSlicer,
            dataset=TensorBatchDataset,
            train_split=None,
            callbacks=callbacks,
            predict_nonlinearity=None,
            verbose=verbose,
            device=device,
            warm_start=warm_start,
            **kwargs,
        )
        self.tasks = tasks
        self.n_experts = n_experts
        self.expert_layer_sizes = expert_layer_sizes
        self.gate_layer_sizes = gate_layer_sizes
        self.tower_layer_sizes = tower_layer_sizes
        self.gate_dropout = gate_dropout
        self.architecture = architecture
        self.n_task_experts = n_task_experts
        self.n_levels = n_levels
        self.gate_dropout_mode = gate_dropout_mode
        self.gate_temperature = gate_temperature
        self.gate_balance = gate_balance
        self.task_weights = task_weights
        self.class_weight = class_weight
        self.numeric_embedding = numeric_embedding
        self.steps_per_epoch = steps_per_epoch
        self.early_stopping = early_stopping
        self.scoring = scoring
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.shrink_quantities = shrink_quantities
        self.random_state = random_state
        self.distributed = distributed
        self.distributed_timeout = distributed_timeout

    # -- parameters ----------------------------------------------------------------

    @classmethod
    def _own_param_names(cls):
        return [
            name
            for name, param in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and param.kind != param.VAR_KEYWORD
        ]

    def _get_param_names(self):
        # Our constructor's arguments, plus skorch's routed `prefix__name` parameters;
        # skorch's fixed components (module, criterion, dataset, ...) are not parameters.
        routed = [key for key in self.__dict__ if "__" in key and not key.endswith("_")]
        return sorted(self._own_param_names() + routed)

    def set_params(self, **params):
        check_set_params_names(self, params)
        # skorch reads "optimizer" as a prefix and fails on an initialized net; here it is
        # a plain parameter, used when the optimizer is next built (see _params).
        if "optimizer" in params:
            self.optimizer = params.pop("optimizer")
        return super().set_params(**params)

    def _validate_own_params(self):
        validate_parameter_constraints(
            self._parameter_constraints,
            {name: getattr(self, name) for name in self._parameter_constraints},
            caller_name=type(self).__name__,
        )
        check_device(self.device)
        layer_sizes("expert_layer_sizes", self.expert_layer_sizes, allow_empty=False)
        layer_sizes("gate_layer_sizes", self.gate_layer_sizes, allow_empty=True)
        layer_sizes("tower_layer_sizes", self.tower_layer_sizes, allow_empty=True)
        check_callbacks(self.callbacks)
        check_routed_batch_sizes(self)
        for prefix in ("module", "criterion"):
            routed = self.get_params_for(prefix)
            if routed:
                raise ValueError(
                    f"{sorted(prefix + '__' + k for k in routed)}: the network and loss are "
                    "configured by this estimator's own parameters (n_experts, "
                    "expert_layer_sizes, task_weights, ...), not through routed ones."
                )

    def _resolved_task_weights(self):
        if isinstance(self.task_weights, str):
            return self.task_weights  # "uncertainty": learned, nothing to resolve
        return task_weight_values(self.task_weights, self.task_names_)

    # -- fitting ---------------------------------------------------------------------

    def _train(self, dataset):
        continuing = self.__sklearn_is_fitted__()
        # The "auto" batch size and the learning rate's scale follow this call's rows.
        self._training_rows = len(dataset)
        try:
            seed = training_seed(self.random_state, getattr(self, "n_iter_", 0))
            with seeded_torch(self._shared_seed(seed), self.device):
                if not self.initialized_:
                    self.initialize()
                    remember_build(self)
                with self._distributed_training(dataset):
                    NeuralNet.partial_fit(self, dataset)
                shrinkage = self._validation_shrinkage()
        except BaseException:
            self.__dict__.pop("_validation_dataset", None)
            # A model that was fitted stays usable after a failed call; its epoch count
            # then includes the epoch cut short, as history_ does.
            if continuing:
                self.n_iter_ = len(self.history)
            raise
        self.n_iter_ = len(self.history)
        self.output_shrinkage_ = shrinkage
        self._set_trained_attributes()

    def _validation_shrinkage(self):
        """Shrink the quantity tasks' outputs by factors chosen on this call's validation
        rows (``shrink_quantities``); returns the factors (all 1 when nothing changed)."""
        valid = self.__dict__.pop("_validation_dataset", None)
        if not self.shrink_quantities or valid is None:
            return np.ones(len(self.tasks_))
        batches = (
            (self.evaluation_step(batch), batch[1])
            for batch in self.get_iterator(valid, training=False)
        )
        factors = validation_shrinkage(batches, self.criterion_)
        scale_task_outputs(self.module_, factors)
        return factors

    def _set_trained_attributes(self):
        """The fitted attributes read off the trained network and loss."""
        self.task_weights_ = self.criterion_.effective_weights().cpu().numpy().astype(float)
        self.expert_labels_ = [
            "shared" if t is None else self.task_names_[t] for t in self.module_.expert_owner
        ]

    def _validated_features(self, X, *, reset):
        """``X`` checked as scikit-learn checks it: with ``reset`` this records
        ``n_features_in_`` (and ``feature_names_in_``), else it checks ``X`` against them.
        A DataFrame comes back as it is (the feature encoder converts it column by
        column), an array or sparse matrix as float32."""
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            return X
        return validate_data(
            self,
            X,
            reset=reset,
            accept_sparse=("csr", "csc", "coo"),
            dtype=np.float32,
            ensure_all_finite="allow-nan",
        )

    def _keep_encoders(self, features, targets):
        """Keep the fitted encoders and set the task attributes the targets determine."""
        self._feature_encoder = features
        self._target_encoder = targets
        self.tasks_ = list(targets.tasks_)
        self.task_names_ = targets.names
        self.task_types_ = [task.kind for task in self.tasks_]
        self.classes_ = [getattr(task, "classes_", None) for task in self.tasks_]

    def _fitted_training_data(self, X, y, sample_weight):
        """The first training call's dataset; fits the encoders and checks the parameters
        that can be checked against the tasks only now, before any training."""
        dataset, features, targets = training_dataset(self, X, y, sample_weight, reset=True)
        self._keep_encoders(features, targets)
        self._resolved_task_weights()
        scoring_terms(self.scoring, self)
        return dataset

    def _continue_training(self, X, y, sample_weight, caller, eval_set=None):
        prepare_continuation(self, caller)
        dataset, _, _ = training_dataset(self, X, y, sample_weight, reset=False)
        self._eval_dataset = eval_set_dataset(self, eval_set)
        stops_early = uses_early_stopping(
            self.early_stopping, len(dataset), self._eval_dataset is not None,
            partial_fit=caller == "partial_fit", source=is_source(X),
        )
        if stops_early != getattr(self, "_stops_early", False):
            # Early stopping is decided per call; its callback follows the decision.
            self._stops_early = stops_early
            self._initialize_callbacks()
        try:
            self._train(dataset)
        finally:
            self._eval_dataset = None
        return self

    @in_distributed_session
    def fit(self, X, y=None, sample_weight=None, eval_set=None):
        """Initialise the network and train it on ``X`` and ``y``.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or data source
            Numeric features ``(n_samples, n_features)``, or a DataFrame that may also
            hold categorical, string and bool columns and NaN (see Notes of the class),
            or a data source (:class:`~sk_mmoe.ParquetSource`,
            :class:`~sk_mmoe.ArrowSource`, see :mod:`sk_mmoe.sources`) streamed from
            disk, whose ``targets`` columns are ``y``.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks), Series or DataFrame
            One column per task; NaN or None marks a missing label. None when ``X`` is a
            data source.
        sample_weight : array-like of shape (n_samples,) or (n_samples, n_tasks), default=None
            Non-negative weights of the rows in every task's loss, or a weight per row
            and task (columns in the order of ``y``'s), e.g. 0 where a task's label
            should not count. ``class_weight`` multiplies them.
        eval_set : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val), or data source, default=None
            Validation rows of your own. Early stopping (unless ``early_stopping=False``)
            then monitors their loss instead of holding out ``validation_fraction`` of
            the training rows, and every training row trains.

        Returns
        -------
        self : MMoERegressorClassifier
        """
        self._validate_own_params()
        if self.warm_start and self.__sklearn_is_fitted__():
            return self._continue_training(
                X, y, sample_weight, "fit with warm_start=True", eval_set
            )
        for name in ("n_iter_", "task_types_", "tasks_"):
            self.__dict__.pop(name, None)
        self.initialized_ = False
        dataset = self._fitted_training_data(X, y, sample_weight)
        self._eval_dataset = eval_set_dataset(self, eval_set)
        self._stops_early = uses_early_stopping(
            self.early_stopping, len(dataset), self._eval_dataset is not None,
            source=is_source(X),
        )
        # The table's size, for the optimizer of small tables (partial_fit has none).
        self._fit_rows = len(dataset)
        try:
            self._train(dataset)
        finally:
            # The validation rows are needed only while training; do not keep them alive.
            self._eval_dataset = None
            del self._fit_rows
        warn_if_not_converged(
            self.history, self.max_epochs, self.n_iter_no_change, self._stops_early, self.scoring
        )
        return self

    @in_distributed_session
    def partial_fit(self, X, y=None, sample_weight=None):
        """Train for ``max_epochs`` more epochs, without re-initialising a fitted network.

        The first call fixes the tasks and their classes; later calls must use the same
        columns and known labels. Parameters changed with ``set_params`` in between
        apply when they concern training (``lr``, ``max_epochs``, ``optimizer__*``,
        ``gate_dropout``, ``gate_temperature``, ``gate_balance``, ``task_weights`` as
        numbers, ...); one that would change the network's shape or a task's kind
        (``n_experts``, ``tasks``, ...) raises a ValueError naming it and telling to call
        ``fit`` (see Notes of the class for the two lists). Rows are never held out
        here: ``early_stopping="auto"`` means off, and only ``early_stopping=True``
        stops on a validation share.

        Parameters
        ----------
        X, y, sample_weight
            As in :meth:`fit`.

        Returns
        -------
        self : MMoERegressorClassifier
        """
        self._validate_own_params()
        if self.__sklearn_is_fitted__():
            return self._continue_training(X, y, sample_weight, "partial_fit")
        self.initialized_ = False
        self._stops_early = uses_early_stopping(
            self.early_stopping, None, False, partial_fit=True, source=is_source(X)
        )
        self._eval_dataset = None
        self._train(self._fitted_training_data(X, y, sample_weight))
        return self

    def __sklearn_is_fitted__(self):
        return hasattr(self, "n_iter_")

    # -- prediction ------------------------------------------------------------------

    def _raw_outputs(self, X):
        check_is_fitted(self)
        dataset = prediction_dataset(self, X)
        outputs = RowOutputs(len(dataset))
        for batch in self.forward_iter(dataset):
            outputs.add(batch)
        return outputs.result().numpy()

    def _predict_tasks(self, X, with_proba=False):
        """Per-task predicted labels/values and (optionally) per-task probabilities."""
        outputs = self._raw_outputs(X)
        columns = self._target_encoder.decode(outputs)
        probas = self._target_encoder.probabilities(outputs) if with_proba else None
        return columns, probas

    def predict(self, X):
        """Predict every task.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or data source, as at fit

        Returns
        -------
        y_pred : ndarray, Series or DataFrame
            Shaped like ``y`` at fit: a DataFrame with ``y``'s columns (and ``X``'s index
            when ``X`` is a DataFrame), a Series, a 2-D array ``(n_samples, n_tasks)``, or
            a 1-D array. Regression values and class labels are in the original space.
            After ``set_output(transform="pandas")`` always a pandas DataFrame, after
            ``set_output(transform="polars")`` a polars DataFrame, one column per task.
        """
        columns, _ = self._predict_tasks(X)
        index = X.index if isinstance(X, pd.DataFrame) else None
        y_pred = self._target_encoder.assemble(columns, index=index)
        return self._predict_container(y_pred, columns, index)

    @available_unless(no_classification_task)
    def predict_proba(self, X):
        """Class probabilities of every classification task.

        Only available when at least one task is a classification task.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or data source, as at fit

        Returns
        -------
        proba : list or ndarray
            One ``(n_samples, n_classes)`` array per task, columns ordered as in
            ``classes_[t]``, and None for regression tasks. When ``y`` was 1-D (a single
            task), the array itself, as scikit-learn classifiers return it.
        """
        _, probas = self._predict_tasks(X, with_proba=True)
        if self._target_encoder.layout_ in ("1d", "series"):
            return probas[0]
        return probas

    def gate_weights(self, X):
        """Each task's gate weights over the experts, in evaluation mode.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame, as at fit

        Returns
        -------
        weights : ndarray of shape (n_samples, n_tasks, n_experts)
            Rows sum to 1 over the experts. For ``"omoe"`` every task shows the shared
            gate; for ``"shared_bottom"`` the single bottom has weight 1. For ``"cgc"``
            and ``"ple"`` the columns are the last level's experts, each task's own
            first (task by task), then the shared ones, as ``expert_labels_`` names
            them; a task's weight on another task's experts is 0.
        """
        check_is_fitted(self)
        dataset = prediction_dataset(self, X)
        self.module_.eval()
        weights = RowOutputs(len(dataset))
        with torch.no_grad():
            for X_batch, _ in self.get_iterator(dataset):
                weights.add(self.module_.gate_weights(X_batch.to(self.device)))
        return weights.result().numpy()

    def score(self, X, y=None, sample_weight=None):
        """Mean over tasks of R² (regression) and accuracy (classification).

        Rows whose label is missing for a task are left out of that task's score; a label
        not seen at fit counts as a wrong prediction. Use :func:`sk_mmoe.task_scores` for
        the per-task values or other metrics.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or data source, as at fit
        y : array-like, Series or DataFrame, as at fit; None with a data source, which
            holds the targets (and its ``sample_weight`` column)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        scores = task_scores(self, X, y, sample_weight=sample_weight)
        return float(np.mean(list(scores.values())))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = True
        # Classification tasks are supported, multiclass included; scikit-learn's checks
        # read these tags wherever predict_proba exists.
        tags.classifier_tags = ClassifierTags(multi_class=True)
        tags.non_deterministic = False
        return tags

    def __repr__(self):
        # scikit-learn's repr, not skorch's: users read parameters, not module internals.
        return super(NeuralNet, self).__repr__()
