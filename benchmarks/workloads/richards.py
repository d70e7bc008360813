"""pyperformance-style `richards`: Martin Richards' operating-system simulation (a scheduler,
an idle task, a worker, two handlers and two devices passing packets), written afresh for
this benchmark. Many small methods and attribute accesses (~110k calls per run)."""

IDLE, WORKER, HANDLER_A, HANDLER_B, DEVICE_A, DEVICE_B = range(6)
K_DEVICE, K_WORK = 0, 1
BUFSIZE = 4


class Packet:
    def __init__(self, link, ident, kind):
        self.link = link
        self.ident = ident
        self.kind = kind
        self.datum = 0
        self.data = [0] * BUFSIZE

    def append_to(self, queue):
        self.link = None
        if queue is None:
            return self
        p = queue
        while p.link is not None:
            p = p.link
        p.link = self
        return queue


class Task:
    def __init__(self, sched, ident, priority, queue, state):
        self.sched = sched
        self.ident = ident
        self.priority = priority
        self.queue = queue
        self.waiting = state == "waiting_packet" or state == "waiting"
        self.held = False
        self.has_packet = queue is not None
        self.link = sched.tasks
        sched.tasks = self
        sched.table[ident] = self

    def runnable(self):
        return not self.held and not (self.waiting and not self.has_packet)

    def take_packet(self):
        p = self.queue
        self.queue = p.link
        self.has_packet = self.queue is not None
        self.waiting = False
        return p

    def add_packet(self, packet, old):
        if self.queue is None:
            self.queue = packet
            self.has_packet = True
            if self.priority > old.priority:
                return self
        else:
            self.queue = packet.append_to(self.queue)
        return old

    def wait(self):
        self.waiting = True
        return self

    def release(self, ident):
        t = self.sched.table[ident]
        t.held = False
        return t if t.priority > self.priority else self

    def hold(self):
        self.sched.hold_count += 1
        self.held = True
        return self.link

    def send(self, packet, ident):
        target = self.sched.table[ident]
        packet.link = None
        packet.ident = self.ident
        return target.add_packet(packet, self)


class IdleTask(Task):
    def __init__(self, sched, ident, priority, count):
        super().__init__(sched, ident, priority, None, "running")
        self.v1, self.count = 1, count

    def step(self, packet):
        self.count -= 1
        if self.count == 0:
            return self.hold()
        if self.v1 & 1 == 0:
            self.v1 >>= 1
            return self.release(DEVICE_A)
        self.v1 = (self.v1 >> 1) ^ 0xD008
        return self.release(DEVICE_B)


class WorkerTask(Task):
    def __init__(self, sched, ident, priority, queue):
        super().__init__(sched, ident, priority, queue, "waiting_packet")
        self.dest, self.count = HANDLER_A, 0

    def step(self, packet):
        if packet is None:
            return self.wait()
        self.dest = HANDLER_B if self.dest == HANDLER_A else HANDLER_A
        packet.ident = self.dest
        packet.datum = 0
        for i in range(BUFSIZE):
            self.count = self.count % 26 + 1
            packet.data[i] = 64 + self.count
        return self.send(packet, self.dest)


class HandlerTask(Task):
    def __init__(self, sched, ident, priority, queue):
        super().__init__(sched, ident, priority, queue, "waiting_packet")
        self.work, self.device = None, None

    def step(self, packet):
        if packet is not None:
            if packet.kind == K_WORK:
                self.work = packet.append_to(self.work)
            else:
                self.device = packet.append_to(self.device)
        if self.work is not None:
            work = self.work
            if work.datum >= BUFSIZE:
                self.work = work.link
                return self.send(work, work.ident)
            if self.device is not None:
                dev = self.device
                self.device = dev.link
                dev.datum = work.data[work.datum]
                work.datum += 1
                return self.send(dev, dev.ident)
        return self.wait()


class DeviceTask(Task):
    def __init__(self, sched, ident, priority):
        super().__init__(sched, ident, priority, None, "waiting")
        self.pending = None

    def step(self, packet):
        if packet is None:
            if self.pending is None:
                return self.wait()
            p, self.pending = self.pending, None
            return self.send(p, p.ident)
        self.pending = packet
        return self.hold()


class Scheduler:
    def __init__(self):
        self.tasks = None
        self.table = [None] * 6
        self.hold_count = 0

    def schedule(self):
        task = self.tasks
        while task is not None:
            if task.runnable():
                task = task.step(task.take_packet() if task.has_packet else None)
            else:
                task = task.link


def run(count=2000):
    s = Scheduler()
    IdleTask(s, IDLE, 0, count)
    q = Packet(Packet(None, 0, K_WORK), 0, K_WORK)
    WorkerTask(s, WORKER, 1000, q)
    q = Packet(Packet(Packet(None, DEVICE_A, K_DEVICE), DEVICE_A, K_DEVICE), DEVICE_A, K_DEVICE)
    HandlerTask(s, HANDLER_A, 2000, q)
    q = Packet(Packet(Packet(None, DEVICE_B, K_DEVICE), DEVICE_B, K_DEVICE), DEVICE_B, K_DEVICE)
    HandlerTask(s, HANDLER_B, 3000, q)
    DeviceTask(s, DEVICE_A, 4000)
    DeviceTask(s, DEVICE_B, 5000)
    s.schedule()
    return s.hold_count
