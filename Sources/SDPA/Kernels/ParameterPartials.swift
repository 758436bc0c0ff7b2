/// One partial gradient of a bias's trainable parts per task of a parallel backward pass: each task
/// adds into its own, and ``merged()`` adds them in task order, so the bits do not depend on which
/// thread ran which task. Empty when there is no plan (no trainable part).
final class _ParameterPartials<Plan: _ParameterGradientPlan>: @unchecked Sendable {
    private let plan: Plan?
    private let partials: UnsafeMutablePointer<Plan.Gradients>
    private let count: Int

    init(plan: Plan?, tasks: Int) {
        (self.plan, count) = (plan, plan == nil ? 0 : tasks)
        partials = .allocate(capacity: count)
        if let plan { partials.initialize(repeating: plan.zeroGradients(), count: count) }
    }

    deinit {
        partials.deinitialize(count: count)
        partials.deallocate()
    }

    /// Task `task`'s partial gradient, or `nil` when there is no plan. Only that task writes it.
    func partial(_ task: Int) -> UnsafeMutablePointer<Plan.Gradients>? {
        plan == nil ? nil : partials + task
    }

    /// The partials added in task order, or `nil` when there is no plan.
    func merged() -> Plan.Gradients? {
        guard let plan else { return nil }
        var total = plan.zeroGradients()
        for task in 0..<count { plan.merge(&total, partials[task]) }
        return total
    }
}
