/// One partial gradient of a bias's trainable parts per task of a parallel backward pass: each task
/// adds into its own, and ``merged()`` adds them in task order, so the bits do not depend on which
/// thread ran which task. Empty when there is no plan (no trainable part).
final class _ParameterPartials: @unchecked Sendable {
    private let plan: _BiasParameterPlan?
    private let partials: UnsafeMutablePointer<_BiasParameterGradients>
    private let count: Int

    init(plan: _BiasParameterPlan?, tasks: Int) {
        (self.plan, count) = (plan, plan == nil ? 0 : tasks)
        partials = .allocate(capacity: count)
        if let plan { partials.initialize(repeating: plan.zeroGradients(), count: count) }
    }

    deinit {
        partials.deinitialize(count: count)
        partials.deallocate()
    }

    /// Task `task`'s partial gradient, or `nil` when there is no plan. Only that task writes it.
    func partial(_ task: Int) -> UnsafeMutablePointer<_BiasParameterGradients>? {
        plan == nil ? nil : partials + task
    }

    /// The partials added in task order, or `nil` when there is no plan.
    func merged() -> _BiasParameterGradients? {
        guard var total = plan?.zeroGradients() else { return nil }
        for task in 0..<count { total.merge(partials[task]) }
        return total
    }
}
