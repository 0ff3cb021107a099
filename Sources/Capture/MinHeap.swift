/// A binary min-heap: the smallest element first. Used to merge inputs in time order
/// (capture files, interfaces, record files) and to keep the youngest refused ages.
public struct MinHeap<Element: Comparable> {
    @usableFromInline var elements: [Element] = []

    @inlinable public init() {}

    @inlinable public var isEmpty: Bool { elements.isEmpty }
    @inlinable public var count: Int { elements.count }
    @inlinable public var minimum: Element? { elements.first }
    /// All elements, in no particular order.
    @inlinable public var unordered: [Element] { elements }

    @inlinable public mutating func insert(_ element: Element) {
        elements.append(element)
        var child = elements.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard elements[child] < elements[parent] else { break }
            elements.swapAt(child, parent)
            child = parent
        }
    }

    @inlinable @discardableResult
    public mutating func popMinimum() -> Element? {
        guard !elements.isEmpty else { return nil }
        elements.swapAt(0, elements.count - 1)
        let top = elements.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < elements.count, elements[left] < elements[smallest] { smallest = left }
            if right < elements.count, elements[right] < elements[smallest] { smallest = right }
            if smallest == parent { break }
            elements.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }

    /// Removes the largest element (a linear scan, then the heap is rebuilt): for bounded
    /// heaps that drop their largest when full.
    @inlinable @discardableResult
    public mutating func removeMaximum() -> Element? {
        guard let index = elements.indices.max(by: { elements[$0] < elements[$1] }) else { return nil }
        let largest = elements.remove(at: index)
        elements.sort()
        return largest
    }
}
