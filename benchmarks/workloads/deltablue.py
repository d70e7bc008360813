"""pyperformance-style `deltablue`: an incremental one-way constraint solver (variables,
constraints of several strengths, plans extracted and executed), written afresh for this
benchmark after the DeltaBlue algorithm's published description (Freeman-Benson, Maloney,
Borning). Chain and projection tests: class hierarchies, lists, many small calls."""

REQUIRED, STRONG, MEDIUM, NORMAL, WEAK, WEAKEST = range(6)   # smaller is stronger


def stronger(a, b):
    return a < b


def weakest_of(a, b):
    return a if a > b else b


class Variable:
    def __init__(self, name, value=0):
        self.name = name
        self.value = value
        self.constraints = []
        self.determined_by = None
        self.walk_strength = WEAKEST
        self.stay = True
        self.mark = 0

    def add(self, c):
        self.constraints.append(c)

    def remove(self, c):
        self.constraints.remove(c)
        if self.determined_by is c:
            self.determined_by = None


class Constraint:
    def __init__(self, strength, planner):
        self.strength = strength
        self.planner = planner

    def add(self):
        self.add_to_graph()
        self.planner.incremental_add(self)

    def satisfy(self, mark):
        self.choose_method(mark)
        if not self.is_satisfied():
            if self.strength == REQUIRED:
                raise RuntimeError("could not satisfy a required constraint")
            return None
        self.mark_inputs(mark)
        out = self.output()
        overridden = out.determined_by
        if overridden is not None:
            overridden.mark_unsatisfied()
        out.determined_by = self
        self.planner.add_propagate(self, mark)
        out.mark = mark
        return overridden

    def is_input(self):
        return False


class UnaryConstraint(Constraint):
    def __init__(self, v, strength, planner):
        super().__init__(strength, planner)
        self.v = v
        self.satisfied = False
        self.add()

    def add_to_graph(self):
        self.v.add(self)
        self.satisfied = False

    def choose_method(self, mark):
        self.satisfied = self.v.mark != mark and stronger(self.strength, self.v.walk_strength)

    def is_satisfied(self):
        return self.satisfied

    def mark_inputs(self, mark):
        pass

    def output(self):
        return self.v

    def recalculate(self):
        self.v.walk_strength = self.strength
        self.v.stay = not self.is_input()
        if self.v.stay:
            self.execute()

    def mark_unsatisfied(self):
        self.satisfied = False

    def inputs_known(self, mark):
        return True


class StayConstraint(UnaryConstraint):
    def execute(self):
        pass


class EditConstraint(UnaryConstraint):
    def is_input(self):
        return True

    def execute(self):
        pass


class BinaryConstraint(Constraint):
    def __init__(self, v1, v2, strength, planner):
        super().__init__(strength, planner)
        self.v1, self.v2 = v1, v2
        self.forward = None   # None: unsatisfied; True: v1 -> v2
        self.add()

    def add_to_graph(self):
        self.v1.add(self)
        self.v2.add(self)
        self.forward = None

    def choose_method(self, mark):
        if self.v1.mark == mark:
            ok = self.v2.mark != mark and stronger(self.strength, self.v2.walk_strength)
            self.forward = True if ok else None
        elif self.v2.mark == mark:
            ok = self.v1.mark != mark and stronger(self.strength, self.v1.walk_strength)
            self.forward = False if ok else None
        elif stronger(self.v1.walk_strength, self.v2.walk_strength):
            self.forward = True if stronger(self.strength, self.v2.walk_strength) else None
        else:
            self.forward = False if stronger(self.strength, self.v1.walk_strength) else None

    def is_satisfied(self):
        return self.forward is not None

    def input(self):
        return self.v1 if self.forward else self.v2

    def output(self):
        return self.v2 if self.forward else self.v1

    def mark_inputs(self, mark):
        self.input().mark = mark

    def recalculate(self):
        i, o = self.input(), self.output()
        o.walk_strength = weakest_of(self.strength, i.walk_strength)
        o.stay = i.stay
        if o.stay:
            self.execute()

    def mark_unsatisfied(self):
        self.forward = None

    def inputs_known(self, mark):
        i = self.input()
        return i.mark == mark or i.stay or i.determined_by is None


class EqualityConstraint(BinaryConstraint):
    def execute(self):
        self.output().value = self.input().value


class ScaleConstraint(BinaryConstraint):
    def __init__(self, src, scale, offset, dest, strength, planner):
        self.scale, self.offset = scale, offset
        super().__init__(src, dest, strength, planner)

    def execute(self):
        if self.forward:
            self.v2.value = self.v1.value * self.scale.value + self.offset.value
        else:
            self.v1.value = (self.v2.value - self.offset.value) // self.scale.value


class Planner:
    def __init__(self):
        self.current_mark = 0

    def new_mark(self):
        self.current_mark += 1
        return self.current_mark

    def incremental_add(self, c):
        mark = self.new_mark()
        overridden = c.satisfy(mark)
        while overridden is not None:
            overridden = overridden.satisfy(mark)

    def add_propagate(self, c, mark):
        todo = [c]
        while todo:
            d = todo.pop()
            d.recalculate()
            for e in d.output().constraints:
                if e is not d and e.is_satisfied() and e.inputs_known(mark):
                    todo.append(e)

    def make_plan(self, sources):
        mark = self.new_mark()
        plan, todo = [], list(sources)
        while todo:
            c = todo.pop(0)
            out = c.output()
            if out.mark != mark and c.inputs_known(mark):
                plan.append(c)
                out.mark = mark
                for d in out.constraints:
                    if d is not c and d.is_satisfied():
                        todo.append(d)
        return plan

    def extract_plan(self, constraints):
        return self.make_plan([c for c in constraints if c.is_input() and c.is_satisfied()])


def chain_test(n):
    planner = Planner()
    vs = [Variable(f"v{i}") for i in range(n + 1)]
    for a, b in zip(vs, vs[1:]):
        EqualityConstraint(a, b, REQUIRED, planner)
    StayConstraint(vs[-1], NORMAL, planner)
    edit = EditConstraint(vs[0], STRONG, planner)
    plan = planner.extract_plan([edit])
    for i in range(50):
        vs[0].value = i
        for c in plan:
            c.execute()
        if vs[-1].value != i:
            raise RuntimeError("chain test failed")


def projection_test(n):
    planner = Planner()
    scale, offset = Variable("scale", 10), Variable("offset", 1000)
    dests = []
    for i in range(n):
        src, dst = Variable(f"src{i}", i), Variable(f"dst{i}", i)
        dests.append(dst)
        StayConstraint(src, NORMAL, planner)
        ScaleConstraint(src, scale, offset, dst, REQUIRED, planner)
    edit = EditConstraint(scale, STRONG, planner)
    plan = planner.extract_plan([edit])
    for v in (5, 10):
        scale.value = v
        for c in plan:
            c.execute()
    return dests[-1].value


def run():
    total = 0
    for _ in range(2):
        chain_test(100)
        total += projection_test(100)
    return total
